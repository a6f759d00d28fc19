"""Shared base of every estimator in the package (core method and baselines).

The public estimators *hold* a skorch net (``net_``) rather than subclassing it,
so their ``__init__`` lists explicit parameters and passes scikit-learn's
``check_estimator``. This base owns what they all share: parameter validation,
``X``/``y`` validation, standardisation, the seeded fit, prediction and the
restriction of a fitted model to a coalition of modalities (for Shapley values).
"""

from __future__ import annotations

import contextlib
import logging
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit

from ._callbacks import DivergenceGuard, InterruptGuard, check_finite_proba
from ._data import (
    SAMPLE_WEIGHT_KEY,
    NanStandardizer,
    is_lazy,
    n_samples_of,
    validate_lazy,
    validate_X,
)
from ._log import EpochLog, OrderNames
from ._threads import limit_torch_threads
from ._training import ViewDataset, batch_loader, subset_predictions

logger = logging.getLogger(__name__)

#: Rows per batch at prediction time on the CPU (predictions do not depend on
#: it): large enough to amortise per-call overhead, small enough to stay in cache.
INFERENCE_BATCH_SIZE = 4096

#: Bytes of working memory one row may take at prediction time on a GPU: the
#: states of every candidate chain (about 20 of ``hidden_size`` floats, with the
#: gate activations) fit in well under this for hidden sizes up to 1024.
_GPU_BYTES_PER_ROW = 256 * 1024


def inference_batch_size(device, batch_size: int) -> int:
    """Rows per prediction chunk on ``device``.

    The CPU uses :data:`INFERENCE_BATCH_SIZE`. A GPU needs much larger chunks to
    be busy; they are sized to a quarter of its memory at
    ``_GPU_BYTES_PER_ROW`` bytes a row, between 4,096 and 262,144 rows.
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return max(batch_size, INFERENCE_BATCH_SIZE)
    index = device.index if device.index is not None else torch.cuda.current_device()
    total = torch.cuda.get_device_properties(index).total_memory
    rows = int(total // 4 // _GPU_BYTES_PER_ROW)
    return max(batch_size, min(max(rows, INFERENCE_BATCH_SIZE), 262_144))


@contextlib.contextmanager
def torch_seed(seed: int, device):
    """Seed torch inside the block and restore the caller's RNG state after it."""
    devices = []
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        devices = [torch.device(device).index or torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def optimizer_options(device) -> dict:
    """AdamW options: the fused implementation where torch has it for ``device``.

    On the CPU the fused step is about three times faster than the default
    per-parameter loop for these small models; every estimator uses it, so
    timings stay comparable.
    """
    kind = torch.device(device).type
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    if kind in ("cpu", "cuda") and (major, minor) >= (2, 4):
        return {"optimizer__fused": True}
    return {}


def check_device(device) -> str:
    """Validate the ``device`` parameter; returns it as a string."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"The 'device' parameter must name a torch device such as 'cpu' or "
            f"'cuda'. Got {device!r} instead."
        ) from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available in this torch build or "
            "on this machine; use device='cpu' or install a CUDA build of torch."
        )
    return str(device)


def fit_seed(random_state) -> int:
    """The integer seed ``fit`` derives from ``random_state``.

    It seeds the weight initialisation, the shuffling and the validation split.
    """
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _valid_split(y: np.ndarray, validation_fraction: float, seed: int):
    """The skorch ``train_split`` of ``fit`` for encoded labels ``y`` (None: none).

    Stratified when every class can appear on both sides.
    """
    if validation_fraction == 0:
        return None
    n_valid = int(np.ceil(validation_fraction * len(y)))
    counts = np.bincount(y)
    stratified = (
        counts.min() >= 2 and n_valid >= len(counts) and len(y) - n_valid >= len(counts)
    )
    return ValidSplit(validation_fraction, stratified=stratified, random_state=seed)


def validation_split_rows(
    y, validation_fraction: float = 0.2, random_state=None
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, validation)`` that ``fit`` holds out for labels ``y``.

    The same split as an estimator of this package with the same
    ``validation_fraction`` and ``random_state`` (an int) fitted on ``y``, so
    that a model from outside the package can be trained on exactly the rows
    the estimators train on (the benchmark suite's reference rows).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels.
    validation_fraction : float, default=0.2
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    train, validation : ndarray of int
        Sorted as skorch's ``ValidSplit`` returns them; ``validation`` is empty
        when ``validation_fraction`` is 0.
    """
    _, y_enc = np.unique(np.asarray(y), return_inverse=True)
    rows = np.arange(len(y_enc))
    split = _valid_split(y_enc, validation_fraction, fit_seed(random_state))
    if split is None:
        return rows, rows[:0]
    train, valid = split(rows, y_enc)
    return np.asarray(train.indices), np.asarray(valid.indices)


class BaseModalityClassifier(ClassifierMixin, BaseEstimator):
    """Base class for the multimodal classifiers; not for direct use.

    Subclasses define ``__init__`` (parameters only), ``_net_class``,
    ``_module_class``, ``_module_params`` and optionally ``_extra_callbacks``,
    ``_net_params`` and ``_after_fit``.
    """

    _parameter_constraints: dict = {
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "adapter_layers": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "standardize": ["boolean"],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": [Interval(Integral, 0, 2, closed="both")],
        "device": [str, torch.device],
    }

    # -- subclass hooks -------------------------------------------------------------
    def _module_params(self) -> dict:
        """Constructor arguments of the torch module beyond the data-derived ones."""
        return {}

    def _net_params(self) -> dict:
        """Extra keyword arguments of the skorch net."""
        return {}

    def _extra_callbacks(self, seed: int, y: np.ndarray) -> list:
        return []

    def _after_fit(self) -> None:
        """Set method-specific fitted attributes from ``self.net_``."""

    def _continue_fit(self, data: dict, y: np.ndarray) -> None:
        """Further training after ``net_.fit`` (e.g. a second stage), same seed.

        Called also when ``net_.fit`` was interrupted (``self._interrupted()``),
        when it should train no further.
        """

    def _stops_early(self) -> bool:
        """``early_stopping``, with ``"auto"`` on whenever a validation split exists."""
        if self.early_stopping == "auto":
            return self.validation_fraction > 0
        return bool(self.early_stopping)

    # -- validation -------------------------------------------------------------------
    def _validate_fit_params(self):
        self._validate_params()
        check_device(self.device)
        if self.early_stopping is True and self.validation_fraction == 0:
            raise ValueError(
                "early_stopping=True needs a validation split; set "
                "validation_fraction > 0 (e.g. 0.2)."
            )

    def _encode_y(self, y, n_samples: int) -> np.ndarray:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target "
                "y is None."
            )
        y = column_or_1d(np.asarray(y), warn=True)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"y must hold class labels; got a {kind} target.")
        if y.shape[0] != n_samples:
            raise ValueError(
                f"y has {y.shape[0]} labels but X has {n_samples} samples."
            )
        self._label_encoder = LabelEncoder().fit(y)
        self.classes_ = self._label_encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has only 1 class ({self.classes_[0]}); a classifier needs "
                "at least 2 classes."
            )
        encoded = self._label_encoder.transform(y).astype(np.int64)
        self.class_prior_ = np.bincount(encoded, minlength=len(self.classes_)) / len(
            encoded
        )
        return encoded

    def _transform(self, arrays):
        return self._standardizer.transform(arrays) if self.standardize else arrays

    def _train_split(self, y: np.ndarray, seed: int):
        return _valid_split(y, self.validation_fraction, seed)

    def _callbacks(self, seed: int, y: np.ndarray) -> list:
        name = type(self).__name__
        callbacks = [
            *self._extra_callbacks(seed, y),
            ("order_names", OrderNames(list(self.modalities_))),
            # after the callbacks that record an epoch, before EarlyStopping
            ("divergence_guard", DivergenceGuard(name)),
            ("interrupt_guard", InterruptGuard(name)),
        ]
        if self._stops_early():
            callbacks.append(
                EarlyStopping(
                    monitor="valid_loss",
                    patience=self.n_iter_no_change,
                    load_best=True,
                    sink=print if self.verbose else logger.info,
                )
            )
        if self.verbose == 2:
            callbacks.append(ProgressBar())
        return callbacks

    # -- fit ------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit the model to multimodal embeddings.

        Parameters
        ----------
        X : dict of str to array-like of shape (n_samples, d_m), or array-like
            One 2-D float array (or DataFrame) per modality, all with the same
            ``n_samples``; a :class:`skorch.helper.SliceDict` works too and makes
            ``X`` sliceable for cross-validation. A single 2-D array is one
            modality named ``"x"``. An all-NaN row marks the modality as absent
            for that sample; partly-NaN rows, infinities and samples with every
            modality absent are errors.
        y : array-like of shape (n_samples,)
            Class labels (ints or strings).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the training loss.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        ValueError
            When the fit diverges: a batch's loss, or a parameter at the end
            of an epoch, is not finite (NaN or inf). The message names the
            epoch and suggests a smaller ``lr``.
        KeyboardInterrupt
            When interrupted (Ctrl-C) before the first epoch completed.

        Warns
        -----
        UserWarning
            When interrupted (Ctrl-C) after at least one epoch: the fit stops
            and returns a usable model with the weights, ``history_`` and
            per-epoch records (e.g. ``shapley_history_``) of the epochs that
            completed, ``n_iter_`` of them; the interrupted epoch is discarded.
        """
        self._validate_fit_params()
        try:
            data, y_enc = self._training_data(X, y, sample_weight)
            seed = fit_seed(self.random_state)
            self._seed = seed
            self.net_ = self._build_net(seed, y_enc)
            with limit_torch_threads(), torch_seed(seed, self.device):
                self.net_.fit(data, y_enc)
                self._continue_fit(data, y_enc)
            self.history_ = self.net_.history
            self.n_iter_ = len(self.net_.history)
            self._after_fit()
        except BaseException:
            # a fit that fails (divergence, Ctrl-C before the first epoch, bad
            # data) leaves no half-fitted model that check_is_fitted accepts
            self._forget_fit()
            raise
        return self

    def _forget_fit(self) -> None:
        """Delete every fitted attribute (names ending in ``_``)."""
        for name in [
            k for k in vars(self) if k.endswith("_") and not k.startswith("__")
        ]:
            delattr(self, name)

    def _interrupted(self) -> bool:
        """Whether KeyboardInterrupt stopped the last training run of ``net_``."""
        return dict(self.net_.callbacks_)["interrupt_guard"].interrupted_

    def _training_data(self, X, y, sample_weight):
        """Validated, standardised training data (arrays, or a streaming dataset)."""
        lazy = is_lazy(X)
        if lazy:
            validate_lazy(self, X, reset=True)
            n_samples = X.n_samples
        else:
            arrays = validate_X(self, X, reset=True)
            n_samples = n_samples_of(arrays)
        y_enc = self._encode_y(y, n_samples)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(
                sample_weight,
                np.broadcast_to(np.float32(0), (n_samples, 1)),
                dtype=np.float32,
                ensure_non_negative=True,
            )
        if self.standardize:
            stats = X.mean_std() if lazy else None
            self._standardizer = (
                NanStandardizer().set_stats(stats)
                if lazy
                else NanStandardizer().fit(arrays)
            )
        if lazy:
            dims = {m: self.n_features_per_modality_[m] for m in self.modalities_}
            return ViewDataset(X, dims, y_enc, weights, self._transform), y_enc
        data = self._transform(arrays)
        if weights is not None:
            data[SAMPLE_WEIGHT_KEY] = weights
        return data, y_enc

    def _build_net(self, seed: int, y: np.ndarray):
        params = {f"module__{k}": v for k, v in self._module_params().items()}
        return self._net_class(
            module=self._module_class,
            module__modalities=list(self.modalities_),
            module__input_dims=[
                self.n_features_per_modality_[m] for m in self.modalities_
            ],
            module__n_classes=len(self.classes_),
            module__hidden_size=self.hidden_size,
            module__adapter_layers=self.adapter_layers,
            module__dropout=self.dropout,
            **params,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            **optimizer_options(self.device),
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            train_split=self._train_split(y, seed),
            iterator_train=batch_loader,
            iterator_train__shuffle=True,
            iterator_valid=batch_loader,
            iterator_valid__batch_size=inference_batch_size(
                self.device, self.batch_size
            ),
            callbacks=self._callbacks(seed, y),
            device=self.device,
            verbose=int(self.verbose > 0),
            callbacks__print_log=EpochLog,
            callbacks__print_log__keys_ignored=[
                "subset_accuracy",
                "shapley",
                "shapley_evaluated",
                "train_order",
            ],
            **self._net_params(),
        )

    # -- predict -----------------------------------------------------------------------
    def _validated(self, X):
        """Validated, standardised inference data (arrays, or a streaming dataset)."""
        if is_lazy(X):
            validate_lazy(self, X, reset=False)
            dims = {m: self.n_features_per_modality_[m] for m in self.modalities_}
            return ViewDataset(X, dims, transform=self._transform)
        return self._transform(validate_X(self, X, reset=False))

    def _predict_proba(self, arrays) -> np.ndarray:
        logits = self.net_.forward(arrays, training=False)
        return check_finite_proba(self, torch.softmax(logits.double(), dim=1).numpy())

    def predict_proba(self, X):
        """Class probabilities; absent modalities are skipped per sample.

        Parameters
        ----------
        X : dict of str to array-like of shape (n_samples, d_m), or array-like
            As in :meth:`fit`. A modality seen in ``fit`` but absent from ``X``
            is missing for every sample; a modality not seen in ``fit`` is an
            error.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        with limit_torch_threads():
            return self._predict_proba(self._validated(X))

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : dict of str to array-like of shape (n_samples, d_m), or array-like
            As in :meth:`predict_proba`.

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        with limit_torch_threads():
            proba = self._predict_proba(self._validated(X))
        return self.classes_[np.argmax(proba, axis=1)]

    def _predict_subsets(self, X, subsets):
        """Labels predicted by the model restricted to each coalition.

        Parameters
        ----------
        X : dict of str to array-like
            As in :meth:`predict`.
        subsets : list of tuple of int
            Coalitions as indices into ``modalities_``; samples with none of a
            coalition's modalities get the most frequent training class.

        Returns
        -------
        y_pred : ndarray of shape (n_subsets, n_samples)
        """
        check_is_fitted(self)
        dataset = self.net_.get_dataset(self._validated(X))
        loader = self.net_.get_iterator(dataset, training=False)
        with limit_torch_threads():
            pred, _ = subset_predictions(
                self.net_.module_,
                loader,
                subsets,
                self.net_.device,
                int(np.argmax(self.class_prior_)),
            )
        return self.classes_[pred]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags
