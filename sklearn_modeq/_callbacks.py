"""skorch callbacks every estimator of the package trains with: faults of a fit.

- :class:`DivergenceGuard` stops a fit whose loss or parameters become
  non-finite and raises a ``ValueError`` (scikit-learn's ``MLPClassifier`` does
  the same), instead of leaving a model that predicts NaN.
- :class:`InterruptGuard` makes a fit stopped by ``KeyboardInterrupt`` (Ctrl-C;
  skorch ends its loop on it) leave a consistent model: the weights and the
  history of the epochs that completed, and a warning.

:func:`check_finite_proba` is the last line of defence at prediction time.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from skorch.callbacks import Callback


def _non_finite_tensor(module: torch.nn.Module) -> str | None:
    """Name of the first parameter or buffer of ``module`` holding NaN or inf."""
    for name, tensor in (*module.named_parameters(), *module.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


class DivergenceGuard(Callback):
    """Stop the fit with a ``ValueError`` when it diverges.

    Checks the loss of every training and validation batch (already a Python
    float in skorch's history, so free) and, once per epoch, that every
    parameter and buffer of the module is finite.

    Parameters
    ----------
    estimator : str
        Name of the estimator, for the message.
    """

    def __init__(self, estimator: str = "the estimator"):
        self.estimator = estimator

    def _diverged(self, net, what: str):
        lr = net.lr
        raise ValueError(
            f"{self.estimator}.fit diverged at epoch {len(net.history)}: {what}. "
            f"The learning rate is probably too large for this data; refit with a "
            f"smaller lr (lr={lr:g} now; try lr={lr / 10:g}) or check the scale of "
            "the inputs (standardize=True)."
        )

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        loss = net.history[
            -1, "batches", -1, "train_loss" if training else "valid_loss"
        ]
        if not math.isfinite(loss):
            where = "training" if training else "validation"
            batch_no = len(net.history[-1, "batches"])
            self._diverged(net, f"the {where} loss of batch {batch_no} is {loss}")

    def on_epoch_end(self, net, **kwargs):
        name = _non_finite_tensor(net.module_)
        if name is not None:
            self._diverged(net, f"the model's {name!r} holds non-finite values")


class InterruptGuard(Callback):
    """Keep a consistent model when ``KeyboardInterrupt`` stops the fit.

    skorch ends ``fit`` quietly on ``KeyboardInterrupt``, in the middle of an
    epoch. This callback snapshots the module's state at the end of every
    completed epoch; when the loop stops inside an epoch it removes that
    epoch's partial row from the history, restores the last snapshot, sets
    ``interrupted_`` and warns. Interrupted before any epoch completed, it
    re-raises the ``KeyboardInterrupt``: there is no model to keep.

    It must come after the callbacks that record an epoch's results (the
    Shapley scheduler) and before ``EarlyStopping``, whose own
    ``KeyboardInterrupt`` then ends a completed epoch and is no interruption,
    and whose restoring of the best weights on ``load_best`` comes last.

    Parameters
    ----------
    estimator : str
        Name of the estimator, for the message.

    Attributes
    ----------
    interrupted_ : bool
        Whether the last training run was interrupted inside an epoch.
    """

    def __init__(self, estimator: str = "the estimator"):
        self.estimator = estimator

    def initialize(self):
        self.interrupted_ = False
        self._completed = 0
        self._state = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.interrupted_ = False
        self._completed = len(net.history)

    def on_epoch_end(self, net, **kwargs):
        self._completed = len(net.history)
        self._state = {
            k: v.detach().clone() for k, v in net.module_.state_dict().items()
        }

    def on_train_end(self, net, **kwargs):
        partial = len(net.history) - self._completed
        if partial <= 0:
            return
        self.interrupted_ = True
        del net.history[self._completed :]
        if self._state is None:
            raise KeyboardInterrupt(
                f"{self.estimator}.fit was interrupted before its first epoch "
                "completed; no model was kept."
            )
        net.module_.load_state_dict(self._state)
        warnings.warn(
            f"{self.estimator}.fit was interrupted (KeyboardInterrupt) during epoch "
            f"{self._completed + 1}; the model keeps the weights of the "
            f"{self._completed} completed epochs (n_iter_={self._completed}) and "
            "their history. Fit again to train it fully.",
            UserWarning,
            stacklevel=2,
        )


def check_finite_proba(estimator, proba: np.ndarray) -> np.ndarray:
    """Return ``proba``, or raise a ValueError when a row is not finite.

    Says whether the model's own parameters are non-finite (a fit that
    diverged) or the inputs overflowed a finite model.
    """
    bad = ~np.isfinite(proba).all(axis=1)
    if not bad.any():
        return proba
    rows = np.flatnonzero(bad)
    name = type(estimator).__name__
    where = (
        f"{name}.predict_proba gave non-finite probabilities for {len(rows)} "
        f"rows (first: row {rows[0]})"
    )
    tensor = _non_finite_tensor(estimator.net_.module_)
    if tensor is not None:
        raise ValueError(
            f"{where}: the model's {tensor!r} holds non-finite values, so the fit "
            "diverged; refit with a smaller lr."
        )
    raise ValueError(
        f"{where}: the model is finite but these inputs overflow it; check "
        "their scale against the training data's."
    )
