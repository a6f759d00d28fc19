"""What the baseline estimators share: constructor parameters, docs, loss helpers."""

from __future__ import annotations

import torch
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from .._base import BaseModalityClassifier
from .._data import SAMPLE_WEIGHT_KEY
from .._training import weighted_cross_entropy

#: Parameters every baseline shares with ShapleyAlternatingClassifier; the
#: ``{common_parameters}`` field of a baseline's docstring is replaced by it.
COMMON_PARAMETERS = """\
hidden_size : int, default=128
        Output size of every modality's adapter (the same for all methods).
    lr : float, default=1e-4
        AdamW learning rate.
    max_epochs : int, default=100
        Number of epochs (fewer with ``early_stopping``).
    batch_size : int, default=64
        Training mini-batch size.
    weight_decay : float, default=0.01
        AdamW weight decay.
    adapter_layers : int, default=1
        Linear -> ReLU blocks per adapter.
    dropout : float, default=0.0
        Dropout in the adapters.
    standardize : bool, default=True
        Standardise each modality with statistics of its present training rows.
    validation_fraction : float, default=0.2
        Stratified share of the training data held out for the validation loss
        and early stopping; 0 holds out nothing.
    early_stopping : bool or "auto", default=False
        Stop when the validation loss has not improved for ``n_iter_no_change``
        epochs and restore the best weights; ``"auto"`` whenever there is a
        validation split.
    n_iter_no_change : int, default=10
        Patience of early stopping.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the validation split; the
        caller's global torch RNG is left untouched.
    verbose : int, default=0
        0 silent, 1 one line per epoch, 2 also a progress bar.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``."""

#: Fitted attributes every baseline has; ``{common_attributes}`` in docstrings.
COMMON_ATTRIBUTES = """\
classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_prior_ : ndarray of shape (n_classes,)
        Training class frequencies.
    modalities_ : list of str
        Modality names in declaration order (``["x"]`` for a single array).
    n_features_per_modality_ : dict of str to int
        Embedding dimension of each modality.
    feature_names_per_modality_ : dict of str to ndarray or None
        Column names of DataFrame inputs.
    n_features_in_ : int
        Total number of features over all modalities.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names when ``X`` was a single DataFrame.
    history_ : skorch.History
        Per-epoch records (``train_loss``, ``valid_loss``, durations).
    n_iter_ : int
        Number of epochs run (those completed, when ``fit`` was interrupted).
    net_ : skorch.NeuralNet
        The fitted skorch net; ``net_.module_`` is the torch model."""

#: Shared Notes paragraph on absent modalities and unimodal accuracy.
COMMON_NOTES = """\
An all-NaN row marks a modality as absent for that sample (DESIGN section 2).
    ``subset_logits`` restricts the model to a coalition of modalities by
    treating the others as absent, which is how
    :func:`sklearn_modeq.metrics.modality_accuracy`, ``modality_shapley`` and
    ``edm`` read every method the same way."""


def document(cls):
    """Fill the shared parameter, attribute and notes fields of a docstring."""
    cls.__doc__ = cls.__doc__.format(
        common_parameters=COMMON_PARAMETERS,
        common_attributes=COMMON_ATTRIBUTES,
        common_notes=COMMON_NOTES,
    )
    return cls


def batch_tensors(net, batch):
    """``(inputs, y, weights)`` of a training batch on the net's device."""
    Xi, yi = unpack_data(batch)
    Xi = to_tensor(Xi, device=net.device)
    yi = to_tensor(yi, device=net.device)
    inputs = {k: v for k, v in Xi.items() if k != SAMPLE_WEIGHT_KEY}
    return inputs, yi, Xi.get(SAMPLE_WEIGHT_KEY)


def masked_cross_entropy(logits, y, weights, rows) -> torch.Tensor:
    """(Weighted) cross-entropy over ``rows``; 0 when no row is selected."""
    if not bool(rows.any()):
        return logits.new_zeros(())
    return weighted_cross_entropy(
        logits[rows], y[rows], None if weights is None else weights[rows]
    )


class BaselineClassifier(BaseModalityClassifier):
    """Base of the baseline estimators: the common constructor parameters."""

    def __init__(
        self,
        *,
        hidden_size=128,
        lr=1e-4,
        max_epochs=100,
        batch_size=64,
        weight_decay=0.01,
        adapter_layers=1,
        dropout=0.0,
        standardize=True,
        validation_fraction=0.2,
        early_stopping=False,
        n_iter_no_change=10,
        random_state=None,
        verbose=0,
        device="cpu",
    ):
        self.hidden_size = hidden_size
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.adapter_layers = adapter_layers
        self.dropout = dropout
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
