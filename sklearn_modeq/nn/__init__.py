"""Pure PyTorch building blocks: adapters, cross-modal mapping, fusion cells,
chain, order sampling and the candidate combiner.

Nothing in this package imports scikit-learn or skorch.
"""

from .adapter import ModalityAdapter
from .chain import Batch, ChainCarry, ModalityChainNet, StepOutput
from .combiner import CandidateCombiner, candidate_groups, fit_combiner
from .fusion import AdditiveFusion, MemoryCell
from .mapping import (
    CrossModalMapping,
    correlation_matrix,
    mapping_matrix,
    pairwise_correlations,
    threshold_correlation,
)
from .orders import OrderTrie, restrict, sample_orders, williams_design

__all__ = [
    "AdditiveFusion",
    "Batch",
    "CandidateCombiner",
    "ChainCarry",
    "CrossModalMapping",
    "MemoryCell",
    "ModalityAdapter",
    "ModalityChainNet",
    "OrderTrie",
    "StepOutput",
    "candidate_groups",
    "correlation_matrix",
    "fit_combiner",
    "mapping_matrix",
    "pairwise_correlations",
    "restrict",
    "sample_orders",
    "threshold_correlation",
    "williams_design",
]
