"""Training on several GPUs through Hugging Face Accelerate.

Searches on a cluster need no code of ours: ``GridSearchCV`` runs through any
joblib backend (``joblib.parallel_config(backend="dask")``, or ``"ray"``); see
``docs/scaling.md``. This module is the other way out of one machine: a single
fit spread over several GPUs (or CPU processes) with data-parallel training.

:class:`AcceleratedAlternatingNet` is skorch's :class:`~skorch.hf.AccelerateMixin`
on top of the alternating net, with what alternating training needs under
PyTorch's ``DistributedDataParallel`` (DDP):

- **One modality per step.** Each optimiser step updates one adapter (plus the
  memory cell and the head); the other adapters get no gradient. DDP must be
  told (``find_unused_parameters=True``, which :func:`make_accelerator` sets and
  the net checks), and the step's forward pass must run *through* the DDP
  wrapper so the gradients are averaged over the processes: the net wraps
  ``alternating_step`` in a module whose ``forward`` it is.
- **Every process takes every step.** A process whose shard of the batch holds
  no sample with the modality being trained still runs the step with a zero
  loss, so the processes never disagree on the number of collective calls.
- **The same order on every process.** Only the training batches are sharded.
  Validation (loss, early stopping) and the Shapley evaluation run on the whole
  validation split in every process, after the running correlation matrices
  are copied from process 0, so every process computes the same values. The
  order and the Shapley values of process 0 are then broadcast anyway, so that
  a non-deterministic kernel cannot make the processes diverge.

Use :func:`make_accelerated` on an estimator, then launch the script with
``accelerate launch`` or ``torchrun``.
"""

from __future__ import annotations

import functools

import torch
from sklearn.base import clone
from skorch import NeuralNet
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from ._training import AlternatingNet, _EpochPasses
from .classifier import ShapleyAlternatingClassifier

try:
    from accelerate import Accelerator
    from accelerate.data_loader import BatchSamplerShard
    from accelerate.utils import (
        DistributedDataParallelKwargs,
        broadcast_object_list,
        send_to_device,
    )
    from skorch.hf import AccelerateMixin
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sklearn_modeq.distributed needs Hugging Face Accelerate: "
        "pip install 'sklearn_modeq[scale]' (or pip install accelerate)."
    ) from exc

__all__ = ["AcceleratedAlternatingNet", "make_accelerated", "make_accelerator"]

#: Keys of the history row the Shapley scheduler writes; broadcast from process 0.
_SCHEDULE_KEYS = ("shapley", "phi", "subset_accuracy")


class _AlternatingStep(nn.Module):
    """``forward`` = the chain's ``alternating_step``, so a DDP wrapper sees it."""

    def __init__(self, chain: nn.Module):
        super().__init__()
        self.chain = chain

    def forward(self, inputs, order, k: int, carry=None, fusion_order=None):
        return self.chain.alternating_step(inputs, order, k, carry, fusion_order)


class _OnDevice:
    """Iterates over a loader, moving every batch to ``device`` (no sharding)."""

    def __init__(self, loader, device):
        self.loader = loader
        self.device = device

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield send_to_device(batch, self.device)


def _print_nothing(*args, **kwargs):
    """The log sink of a silent net."""


def make_accelerator(**kwargs) -> Accelerator:
    """An :class:`accelerate.Accelerator` set up for alternating training.

    Adds ``DistributedDataParallelKwargs(find_unused_parameters=True)`` to the
    handlers: every alternating step leaves the other modalities' adapters
    without gradient.

    Parameters
    ----------
    **kwargs
        Passed to :class:`accelerate.Accelerator` (``mixed_precision="bf16"``,
        ``cpu=True``, ...). ``kwargs_handlers`` are kept.

    Returns
    -------
    accelerator : accelerate.Accelerator
    """
    handlers = list(kwargs.pop("kwargs_handlers", None) or [])
    if not any(isinstance(h, DistributedDataParallelKwargs) for h in handlers):
        handlers.append(DistributedDataParallelKwargs(find_unused_parameters=True))
    return Accelerator(kwargs_handlers=handlers, **kwargs)


class AcceleratedAlternatingNet(AccelerateMixin, AlternatingNet):
    """The alternating net trained through Hugging Face Accelerate.

    Data-parallel over the processes of ``accelerate launch``/``torchrun`` (one
    GPU each), with mixed precision if the accelerator asks for it. See the
    module docstring for what alternating training needs under DDP. Built by
    :func:`make_accelerated`; direct use is as a skorch net.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
        Its DDP kwargs must set ``find_unused_parameters=True`` (use
        :func:`make_accelerator`) and ``gradient_accumulation_steps`` must be 1
        (accumulating would mix the gradients of different modalities' steps).
    device : ignored
        Device placement is the accelerator's; the net's device is always None.
    **kwargs
        Passed to :class:`~sklearn_modeq._training.AlternatingNet`.
    """

    def __init__(self, *args, accelerator, device=None, **kwargs):
        super().__init__(*args, accelerator=accelerator, device=None, **kwargs)
        self._in_fit = False
        self._set_ddp_step(None)

    # -- set-up -----------------------------------------------------------------------
    def initialize(self):
        # AccelerateMixin.initialize re-implements NeuralNet.initialize instead of
        # calling super(), which would skip AlternatingNet's initial order
        AlternatingNet.initialize(self)
        self._initialize_accelerator()
        return self

    def _set_ddp_step(self, step):
        # not a registered skorch module: it shares the parameters of module_
        object.__setattr__(self, "_ddp_step", step)

    @property
    def _distributed(self) -> bool:
        return self.accelerator.num_processes > 1

    def _initialize_callbacks(self):
        # the mixin's "auto" sink (accelerator.print) would print even with
        # verbose=0; print on the main process only, and only when verbose
        if self.callbacks__print_log__sink == "auto":
            self.callbacks__print_log__sink = (
                self.accelerator.print if self.verbose else _print_nothing
            )
        return super()._initialize_callbacks()

    def _check_accelerator(self):
        acc = self.accelerator
        if acc.gradient_accumulation_steps != 1:
            raise ValueError(
                "AcceleratedAlternatingNet needs gradient_accumulation_steps=1; got "
                f"{acc.gradient_accumulation_steps}. Each optimiser step trains one "
                "modality, so accumulated gradients would mix modalities; use a "
                "larger batch_size instead."
            )
        handler = getattr(acc, "ddp_handler", None)
        if self._distributed and not (handler and handler.find_unused_parameters):
            raise ValueError(
                "The accelerator runs several processes but DDP does not look for "
                "unused parameters; every alternating step leaves the other "
                "modalities' adapters without gradient, which stops DDP. Create it "
                "with sklearn_modeq.distributed.make_accelerator(...) or pass "
                "kwargs_handlers=[DistributedDataParallelKwargs("
                "find_unused_parameters=True)] to Accelerator."
            )

    def _initialize_accelerator(self):
        """Prepare the alternating step (DDP), the optimiser and the criterion.

        ``module_`` itself stays unwrapped, so the Shapley scheduler and
        inference keep calling its methods; the DDP wrapper holds the same
        parameters.
        """
        if self._wrapped_with_accelerator:
            return self
        self._check_accelerator()
        self._set_ddp_step(self.accelerator.prepare(_AlternatingStep(self.module_)))
        with self._current_init_context("optimizer"):
            for name in self._optimizers:
                optimizer = getattr(self, name + "_")
                setattr(self, name + "_", self.accelerator.prepare(optimizer))
        self._wrapped_with_accelerator = True
        return self

    def _unwrap_accelerator(self):
        super()._unwrap_accelerator()
        self._set_ddp_step(None)

    # -- data -------------------------------------------------------------------------
    def get_iterator(self, dataset, training=False):
        """Shard training batches over the processes; evaluate on all the data.

        During ``fit`` the buffers (running correlation matrices) are copied
        from process 0 before every evaluation pass (here for a separate
        Shapley pass, in :meth:`run_single_epoch` for the validation pass), so
        validation losses and Shapley values agree over the processes.
        """
        loader = NeuralNet.get_iterator(self, dataset, training=training)
        if training and self._in_fit:
            loader = self._shard(loader)
        elif self._in_fit:
            self._sync_buffers()
        if self.accelerator.device_placement:
            loader = _OnDevice(loader, self.accelerator.device)
        if training and self.alternation == "epoch":
            return _EpochPasses(self, loader)
        return loader

    def _shard(self, loader):
        """This process's share of the batches of a ``batch_loader``.

        Every process shuffles with the same seed (drawn on process 0) and takes
        every ``num_processes``-th batch, with as many batches as the others
        (accelerate's ``BatchSamplerShard``; accelerate's own loader preparation
        rejects a loader whose sampler yields whole batches).
        """
        if not self._distributed:
            return loader
        batches = loader.sampler
        if isinstance(batches.sampler, RandomSampler):
            seed = [int(torch.randint(2**62, ()))]
            broadcast_object_list(seed, from_process=0)
            batches.sampler.generator = torch.Generator().manual_seed(seed[0])
        return DataLoader(
            loader.dataset,
            sampler=BatchSamplerShard(
                batches,
                num_processes=self.accelerator.num_processes,
                process_index=self.accelerator.process_index,
                even_batches=True,
            ),
            batch_size=None,
            num_workers=loader.num_workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
        )

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch builds the validation iterator once per fit, so the buffers are
        # copied here, before every validation pass (which also yields the
        # Shapley coalitions' predictions), not only when an iterator is made
        if not training and iterator is not None and self._in_fit:
            self._sync_buffers()
        return super().run_single_epoch(
            iterator, training, prefix, step_fn, **fit_params
        )

    def evaluation_step(self, batch, training=False):
        # every process sees the whole evaluation data: nothing to gather
        return NeuralNet.evaluation_step(self, batch, training=training)

    def _sync_buffers(self):
        if not self._distributed:
            return
        for buffer in self.module_.buffers():
            torch.distributed.broadcast(buffer, src=0)

    # -- training ---------------------------------------------------------------------
    def notify(self, method_name, **cb_kwargs):
        if method_name == "on_train_begin":
            self._in_fit = True
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_epoch_end":
            self._sync_schedule()
        elif method_name == "on_train_end":
            self._in_fit = False

    def _sync_schedule(self):
        """Make process 0's order and Shapley values those of every process."""
        if not self._distributed:
            return
        row = self.history[-1]
        payload = [
            list(self.training_order_),
            {k: row[k] for k in _SCHEDULE_KEYS if k in row},
        ]
        broadcast_object_list(payload, from_process=0)
        self.training_order_ = payload[0]
        for key, value in payload[1].items():
            self.history.record(key, value)

    # -- training: AlternatingNet.train_step with the steps through DDP ------------
    def train_step(self, batch, **fit_params):
        # AccelerateMixin.train_step (one optimiser step per batch) comes first
        # in the MRO; alternating training takes one step per modality instead
        return AlternatingNet.train_step(self, batch, **fit_params)

    def step_logits(self, inputs, order, k: int, carry=None, fusion_order=None):
        # through the DDP wrapper, so the gradients are averaged over processes
        step = self._ddp_step or _AlternatingStep(self.module_)
        return step(inputs, order, k, carry, fusion_order)

    def step_context(self):
        return self.accelerator.autocast()

    def backward(self, loss) -> None:
        self.accelerator.backward(loss)

    def skips_empty_steps(self) -> bool:
        return not self._distributed


def make_accelerated(
    estimator: ShapleyAlternatingClassifier, accelerator: Accelerator | None = None
) -> ShapleyAlternatingClassifier:
    """A copy of ``estimator`` whose ``fit`` trains through Accelerate.

    Parameters
    ----------
    estimator : ShapleyAlternatingClassifier
        Unfitted or fitted; its parameters are copied (:func:`sklearn.base.clone`).
    accelerator : accelerate.Accelerator, default=None
        Created by :func:`make_accelerator` when None.

    Returns
    -------
    estimator : ShapleyAlternatingClassifier
        Unfitted; ``fit`` builds an :class:`AcceleratedAlternatingNet`. The
        accelerator is not a parameter: ``clone`` of the result (and so any
        search) gives a plain estimator again. Searches scale with joblib
        backends instead (``docs/scaling.md``).

    Examples
    --------
    Saved as ``train.py`` and run with ``accelerate launch train.py``::

        from sklearn_modeq import ShapleyAlternatingClassifier
        from sklearn_modeq.distributed import make_accelerated, make_accelerator

        clf = make_accelerated(
            ShapleyAlternatingClassifier(random_state=0),
            make_accelerator(mixed_precision="bf16"),
        ).fit(X, y)
    """
    if not isinstance(estimator, ShapleyAlternatingClassifier):
        raise TypeError(
            "make_accelerated expects a ShapleyAlternatingClassifier; got "
            f"{type(estimator).__name__}."
        )
    accelerated = clone(estimator)
    accelerated._net_class = functools.partial(
        AcceleratedAlternatingNet,
        accelerator=make_accelerator() if accelerator is None else accelerator,
    )
    return accelerated
