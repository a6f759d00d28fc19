"""Pure PyTorch building blocks: adapters, cross-modal mapping, fusion cells, chain.

Nothing in this package imports scikit-learn or skorch.
"""

from .adapter import ModalityAdapter
from .chain import ChainCarry, ModalityChainNet
from .fusion import AdditiveFusion, MemoryCell
from .mapping import CrossModalMapping, correlation_matrix, threshold_correlation
from .orders import OrderTrie, sample_orders

__all__ = [
    "AdditiveFusion",
    "ChainCarry",
    "CrossModalMapping",
    "MemoryCell",
    "ModalityAdapter",
    "ModalityChainNet",
    "OrderTrie",
    "correlation_matrix",
    "sample_orders",
    "threshold_correlation",
]
