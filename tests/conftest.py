import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def seeds_fixed():
    """Seed numpy and torch so every test starts from the same state."""
    np.random.seed(0)
    torch.manual_seed(0)
