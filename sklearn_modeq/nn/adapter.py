"""Per-modality adapters that bring every embedding to the shared hidden size."""

from __future__ import annotations

from torch import nn


class ModalityAdapter(nn.Sequential):
    """``n_layers`` blocks of Linear -> ReLU (-> Dropout), ``d_in -> hidden_size``.

    One block is the paper's adapter (section 5.4: a linear layer and ReLU on top
    of frozen backbone features).

    Parameters
    ----------
    in_features : int
        Embedding dimension ``d_m`` of the modality.
    hidden_size : int
        Output dimension ``h``, shared by all modalities.
    n_layers : int, default=1
        Number of Linear -> ReLU blocks.
    dropout : float, default=0.0
        Dropout after each block; 0 adds no dropout layer.
    """

    def __init__(
        self, in_features: int, hidden_size: int, n_layers: int = 1, dropout=0.0
    ):
        layers = []
        for layer in range(n_layers):
            layers.append(
                nn.Linear(in_features if layer == 0 else hidden_size, hidden_size)
            )
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
