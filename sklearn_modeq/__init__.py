"""Shapley-guided alternating training for imbalanced multimodal classification."""

__version__ = "0.1.0"
