import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def seeds_fixed():
    """Seed numpy and torch so every test starts from the same state."""
    np.random.seed(0)  # noqa: NPY002 - code under test may use the legacy global RNG
    torch.manual_seed(0)
