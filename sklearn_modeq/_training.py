"""skorch pieces: the dataset, the alternating net and the Shapley scheduler.

The loop itself is skorch's (``fit_loop``/``run_single_epoch``); alternation is a
``train_step`` override (per batch) or a wrapped iterator (per epoch), and the
Shapley scheduling is a callback that records its values in the history.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from ._data import SAMPLE_WEIGHT_KEY
from .shapley import ShapleyPlan, members, shapley_standard_errors


class ModalityDataset(torch.utils.data.Dataset):
    """Rows of a dict of arrays, indexed a whole batch at a time.

    ``dataset[indices]`` returns ``({name: tensor (len(indices), d)}, y)``: one
    fancy-indexing per modality instead of one ``__getitem__`` per sample plus a
    collate, which is what makes small-MLP training on embeddings fast.
    """

    def __init__(self, X, y=None):
        self.X = {k: torch.as_tensor(v) for k, v in X.items()}
        self.n = len(next(iter(self.X.values())))
        self.y = None if y is None else torch.as_tensor(y)

    def __len__(self):
        return self.n

    def __getitem__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        if len(idx) > 1 and bool((idx[1:] - idx[:-1] == 1).all()):
            idx = slice(int(idx[0]), int(idx[-1]) + 1)  # a view, not a copy
        xb = {k: v[idx] for k, v in self.X.items()}
        yb = (
            torch.zeros(len(indices), dtype=torch.long)
            if self.y is None
            else self.y[idx]
        )
        return xb, yb


class ViewDataset(torch.utils.data.Dataset):
    """Batches read on demand from an out-of-core view (e.g. the HDF5 cache).

    ``dataset[indices]`` reads just those rows (``view.take``), adds all-NaN
    arrays for modalities the view lacks, applies ``transform`` and returns
    ``({name: tensor}, y)``, so memory stays at one batch whatever the data size.
    The view reopens its file once per process, so DataLoader workers each get
    their own handle.

    Parameters
    ----------
    view : object with ``take`` and ``n_samples``
    dims : dict of str to int
        Every modality the model expects, with its dimension, in order.
    y, weights : ndarray of shape (n_samples,) or None
    transform : callable or None
        Applied to the dict of arrays of each batch (standardisation).
    """

    def __init__(self, view, dims, y=None, weights=None, transform=None):
        self.view = view
        self.dims = dict(dims)
        self.y = None if y is None else torch.as_tensor(y)
        self.weights = None if weights is None else torch.as_tensor(weights)
        self.transform = transform

    def __len__(self):
        return self.view.n_samples

    def __getitem__(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        read = self.view.take(idx)
        arrays = {
            name: read[name]
            if name in read
            else np.full((len(idx), d), np.nan, np.float32)
            for name, d in self.dims.items()
        }
        if self.transform is not None:
            arrays = self.transform(arrays)
        xb = {k: torch.as_tensor(v) for k, v in arrays.items()}
        if self.weights is not None:
            xb[SAMPLE_WEIGHT_KEY] = self.weights[idx]
        yb = torch.zeros(len(idx), dtype=torch.long) if self.y is None else self.y[idx]
        return xb, yb


class BlockShuffleSampler(torch.utils.data.Sampler):
    """Shuffles blocks of rows, and rows within groups of blocks, not single rows.

    Every epoch draws a random order of the blocks, cuts it into groups of
    ``mix_blocks`` consecutive blocks and shuffles the positions within each
    group. Cut into batches, this order makes every batch read a few contiguous
    ranges of an out-of-core view instead of scattered rows. Seeded from torch's
    global RNG, like :class:`torch.utils.data.RandomSampler`.

    Parameters
    ----------
    blocks : ndarray of shape (n_samples,)
        The block of every position of the dataset.
    mix_blocks : int
        Blocks whose rows are shuffled together.
    """

    def __init__(self, blocks, mix_blocks: int):
        self.blocks = np.asarray(blocks)
        self.mix_blocks = int(mix_blocks)

    def __len__(self):
        return len(self.blocks)

    def __iter__(self):
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        rng = np.random.default_rng(seed)
        labels, block = np.unique(self.blocks, return_inverse=True)
        rank = np.empty(len(labels), dtype=np.int64)
        rank[rng.permutation(len(labels))] = np.arange(len(labels))
        group = rank[block.reshape(-1)] // self.mix_blocks
        order = np.lexsort((rng.random(len(self.blocks)), group))
        return iter(order.tolist())


def sampling_blocks(dataset):
    """``(block of every position, mix_blocks)`` of a dataset over a view that
    shuffles blocks (``view.sampling_blocks()``), through any Subsets; or None."""
    indices = None
    while isinstance(dataset, torch.utils.data.Subset):
        inner = np.asarray(dataset.indices, dtype=np.int64)
        indices = inner if indices is None else inner[indices]
        dataset = dataset.dataset
    view = getattr(dataset, "view", None)
    found = getattr(view, "sampling_blocks", None)
    blocks = found() if found is not None else None
    if blocks is None:
        return None
    ids, mix_blocks = blocks
    return (ids if indices is None else ids[indices]), mix_blocks


def batch_loader(dataset, batch_size=128, shuffle=False, **kwargs):
    """DataLoader that hands whole index batches to ``dataset.__getitem__``.

    Over an out-of-core view opened with ``shuffle="blocks"``, training
    batches come from :class:`BlockShuffleSampler`, and the validation split (a
    ``Subset``, whose results do not depend on the order of its rows) is read
    in file order; prediction (the whole dataset) keeps the order of its rows.
    """
    blocks = sampling_blocks(dataset)
    if blocks is not None and shuffle:
        sampler = BlockShuffleSampler(*blocks)
    elif blocks is not None and isinstance(dataset, torch.utils.data.Subset):
        sampler = np.argsort(blocks[0], kind="stable").tolist()
    elif shuffle:
        sampler = RandomSampler(dataset)
    else:
        sampler = SequentialSampler(dataset)
    return DataLoader(
        dataset,
        sampler=BatchSampler(sampler, batch_size=batch_size, drop_last=False),
        batch_size=None,
        **kwargs,
    )


def weighted_cross_entropy(logits, y, weights=None):
    """Mean cross-entropy, weighted by ``weights`` when given."""
    losses = F.cross_entropy(logits, y, reduction="none")
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum().clamp_min(1e-12)


class _EpochPasses:
    """Iterates over a loader once per modality (per-epoch alternation).

    Before each pass it tells the net which position of the order to train.
    """

    def __init__(self, net, loader):
        self.net = net
        self.loader = loader

    def __len__(self):
        return len(self.loader) * len(self.net.training_order_)

    def __iter__(self):
        for k in range(len(self.net.training_order_)):
            self.net.active_steps_ = (k,)
            yield from self.loader
        self.net.active_steps_ = None


class ModalityNet(NeuralNet):
    """skorch net on dict-of-modalities data (batch-indexed dataset, weighted loss).

    ``infer`` calls ``module_(**modalities)`` without the sample-weight key and
    ``get_loss`` is the (sample-weighted) cross-entropy, so a module whose
    ``forward`` returns fused logits is trained jointly as is.
    """

    def get_dataset(self, X, y=None):
        if isinstance(X, torch.utils.data.Dataset):
            return X
        return ModalityDataset(X, y)

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        inputs = {k: v for k, v in x.items() if k != SAMPLE_WEIGHT_KEY}
        return self.module_(**inputs, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        weights = None if X is None else X.get(SAMPLE_WEIGHT_KEY)
        if weights is not None:
            weights = to_tensor(weights, device=self.device)
        return weighted_cross_entropy(y_pred, y_true, weights)


class AlternatingNet(ModalityNet):
    """skorch net that trains one modality at a time along ``training_order_``.

    Parameters
    ----------
    alternation : {"batch", "epoch"}, default="batch"
        ``"batch"``: every batch takes one optimiser step per modality, in order;
        ``"epoch"``: every epoch makes one pass over the data per modality.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.

    Attributes
    ----------
    training_order_ : list of int
        Modality indices in the order the current epoch trains them
        (set by :class:`ShapleyScheduler`).
    """

    def __init__(self, *args, alternation="batch", **kwargs):
        super().__init__(*args, **kwargs)
        self.alternation = alternation

    def initialize(self):
        self.training_order_ = list(range(len(self.module__modalities)))
        self.active_steps_ = None
        self.shared_subsets_ = None
        self.shared_orders_ = None
        self.shared_predictions_ = []
        return super().initialize()

    def validation_step(self, batch, **fit_params):
        """Validation loss; also the coalition predictions the Shapley step needs.

        When :class:`ShapleyScheduler` asked for ``shared_subsets_`` this epoch,
        one prefix-trie walk gives the full model's logits (for the loss) and
        every coalition's predictions, which would otherwise be a second walk
        over the same chains after the epoch.
        """
        if self.shared_subsets_ is None:
            return super().validation_step(batch, **fit_params)
        self._set_training(False)
        Xi, yi = unpack_data(batch)
        with torch.no_grad():
            x = to_tensor(Xi, device=self.device)
            inputs = {k: v for k, v in x.items() if k != SAMPLE_WEIGHT_KEY}
            module = self.module_
            # the coalitions with the scheduler's orders, and the loss on the
            # full coalition with every inference order: one trie walk
            groups = module.coalition_groups(self.shared_subsets_, self.shared_orders_)
            states, covered = module.group_states(inputs, [*groups, module.orders])
            logits = module.head(states[:-1])
            covered = covered[:-1]
            y_pred = module.head(states[-1])
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        self.shared_predictions_.append((logits.argmax(dim=2), covered, np.asarray(yi)))
        return {"loss": loss, "y_pred": y_pred}

    def get_iterator(self, dataset, training=False):
        loader = super().get_iterator(dataset, training=training)
        if training and self.alternation == "epoch":
            return _EpochPasses(self, loader)
        return loader

    def step_modality(self, modality: int) -> None:
        """Optimiser step after the backward pass that trained ``modality``.

        A hook for subclasses that modify the update (e.g. project it).
        """
        self.optimizer_.step()

    # -- hooks for data-parallel subclasses (see sklearn_modeq.distributed) ---------
    def step_logits(self, inputs, order, k: int, carry=None, fusion_order=None):
        """Loss terms and chain state of the alternating step for position ``k``
        (:meth:`ModalityChainNet.alternating_step`)."""
        return self.module_.alternating_step(inputs, order, k, carry, fusion_order)

    def step_context(self):
        """Context of a step's forward pass and loss (e.g. mixed precision)."""
        return contextlib.nullcontext()

    def backward(self, loss) -> None:
        loss.backward()

    def skips_empty_steps(self) -> bool:
        """Whether a step with no row having the modality is skipped (a process
        of a data-parallel run must take every step to stay in sync)."""
        return True

    def fusion_order(self, n: int) -> list[int]:
        """A uniformly random order of all modalities for the fusion term."""
        return torch.randperm(n).tolist()

    def train_step(self, batch, **fit_params):
        """One optimiser step per modality of the active positions of the order.

        With one step per modality per batch, each step continues the chain
        state the previous step left (detached: the earlier adapters are frozen
        anyway), so a batch costs ``n`` chain steps, not ``n (n + 1) / 2``. The
        step that trains the first modality of the order also trains the memory
        cell and the head along a random order of all modalities (it computes
        every adapter output anyway, to update the running correlations).
        """
        self._set_training(True)
        Xi, yi = batch
        Xi = to_tensor(Xi, device=self.device)
        yi = to_tensor(yi, device=self.device)
        weights = Xi.get(SAMPLE_WEIGHT_KEY)
        inputs = {k: v for k, v in Xi.items() if k != SAMPLE_WEIGHT_KEY}
        if hasattr(self.module_, "prepare"):  # masks and NaN-free values, once
            inputs = self.module_.prepare(inputs)
        order = tuple(self.training_order_)
        per_batch = self.active_steps_ is None
        steps = range(len(order)) if per_batch else self.active_steps_
        total, count, logits, carry = 0.0, 0, None, None
        named_parameters = list(self.get_all_learnable_params())
        for k in steps:
            fusion = self.fusion_order(len(order)) if k == 0 else None
            self.optimizer_.zero_grad(set_to_none=True)
            with self.step_context():
                out = self.step_logits(
                    inputs, order, k, carry if per_batch else None, fusion
                )
                carry = out.carry
                terms = [(z, rows) for z, rows in out.terms if len(z)]
                if not terms and self.skips_empty_steps():
                    continue
                if terms:
                    loss = terms_loss(terms, yi, weights, out.stacked)
                else:  # a zero gradient keeps a data-parallel run's collectives
                    loss = sum(z.sum() for z, _ in out.terms) * 0.0
            self.backward(loss)
            self.notify(
                "on_grad_computed",
                named_parameters=named_parameters,
                X=Xi,
                y=yi,
                training=True,
            )
            self.step_modality(order[k])
            n_rows = len(out.terms[0][0])
            total = total + loss.detach() * n_rows
            count += n_rows
            logits = out.terms[0][0]
        loss = total / count if count else torch.zeros((), device=self.device)
        return {"loss": loss, "y_pred": logits}


def terms_loss(terms, y, weights=None, stacked=None):
    """The sum over ``terms`` (``(logits, rows)`` pairs) of each term's
    (weighted) mean cross-entropy against ``y[rows]``.

    When every term covers every row and there are no weights, that is one
    cross-entropy over the stacked logits (``stacked`` when the terms are its
    views, saving a copy), times the number of terms.
    """
    if weights is None and all(len(z) == len(y) for z, _ in terms):
        if stacked is None:
            stacked = torch.cat([z for z, _ in terms])
        return F.cross_entropy(stacked.float(), y.repeat(len(terms))) * len(terms)
    return sum(
        weighted_cross_entropy(
            z.float(), y[rows], None if weights is None else weights[rows]
        )
        for z, rows in terms
    )


def _predictions(parts, empty_class: int):
    """Stack per-batch (predicted class, covered, truth) into arrays."""
    preds, truths = [], []
    for pred, covered, truth in parts:
        pred = torch.where(covered, pred, torch.full_like(pred, empty_class))
        preds.append(pred.cpu().numpy())
        truths.append(truth)
    return np.concatenate(preds, axis=1), np.concatenate(truths)


def subset_predictions(module, loader, subsets, device, empty_class: int, orders=None):
    """Predicted classes of the model restricted to each coalition.

    Runs the adapters once per sample and the chains of all coalitions together
    (:meth:`ModalityChainNet.subset_logits`). Samples with none of a coalition's
    modalities get ``empty_class``.

    Returns
    -------
    y_pred : ndarray of shape (n_subsets, n_samples)
    y_true : ndarray of shape (n_samples,)
    """
    parts = []
    was_training = module.training
    module.eval()
    with torch.no_grad():
        for xb, yb in loader:
            xb = to_tensor(xb, device=device)
            inputs = {k: v for k, v in xb.items() if k != SAMPLE_WEIGHT_KEY}
            if orders is None:  # baselines' modules take no orders
                logits, covered = module.subset_logits(inputs, subsets)
            else:
                logits, covered = module.subset_logits(inputs, subsets, orders)
            parts.append((logits.argmax(dim=2), covered, np.asarray(yb)))
    module.train(was_training)
    return _predictions(parts, empty_class)


class ShapleyScheduler(Callback):
    """Computes every modality's Shapley value after each epoch and sets the order.

    ``P(S)`` is the validation accuracy of the model restricted to the coalition
    ``S`` (paper Eq. 7); ``P(empty)`` is the accuracy of always predicting the
    most frequent training class. The next epoch trains the modalities by
    ascending Shapley value (Eq. 8); modalities with equal values keep their
    order of the epoch before. With ``order="random"`` or ``"fixed"`` the values
    are still recorded, but the order is a seeded random permutation or the
    declaration order.

    A small validation split makes ``P(S)`` coarse (6 samples give accuracies in
    steps of 1/6, and the values tie). When it has fewer than ``min_samples``
    rows, ``P(S)`` is the accuracy over the predictions of the last
    ``ceil(min_samples / n_rows)`` epochs pooled together: a moving average
    over epochs, which smooths the values; it cannot add information the split
    does not hold.

    Above three modalities (where the ``2**n`` coalitions cost most of the
    validation pass) a coalition's accuracy is that of the restriction of one
    inference order (:meth:`_shapley_orders`). Above two modalities, with
    ``order="shapley"``, the values are not recomputed after every epoch once
    the order is stable: after two evaluations that leave the order unchanged
    the interval between evaluations doubles, up to every 8th epoch, and it
    falls back to every epoch as soon as an evaluation changes the order. An
    epoch without evaluation records the last values again and
    ``shapley_evaluated=False``. (At two modalities the coalitions add two
    one-modality chains to the forward pass the validation loss needs anyway:
    nothing worth saving.)

    Records per epoch in the history: ``train_order`` (the order this epoch
    trained), ``shapley`` (values per modality, declaration order),
    ``shapley_se`` (their standard errors over the validation rows: each value
    is a mean of per-row contributions), ``phi`` (the
    same as a short string for the log), ``shapley_evaluated``,
    ``subset_accuracy`` (``{mask: accuracy}``) and ``shapley_dur`` (seconds
    spent after the epoch). When the evaluation set is the whole validation
    split, the coalitions' predictions are computed by the validation pass
    (:meth:`AlternatingNet.validation_step`, whose time is in ``dur``), so
    ``shapley_dur`` is then only the aggregation.

    Parameters
    ----------
    order : {"shapley", "random", "fixed"}
    max_exact : int
        Exact Shapley values up to this many modalities; sampled above.
    n_permutations : int
        Permutations sampled when not exact.
    max_samples : int or None
        Evaluate on at most this many validation samples (a fixed seeded
        subsample); None uses them all.
    majority_class : int
        Encoded most frequent training class (the empty coalition's guess).
    random_state : int
        Seed for the permutation sample, the subsample and the random order.
    min_samples : int, default=50
        Pool the predictions of recent epochs until at least this many are
        counted.
    """

    def __init__(
        self,
        order="shapley",
        max_exact=6,
        n_permutations=32,
        max_samples=None,
        majority_class=0,
        random_state=0,
        min_samples=50,
    ):
        self.order = order
        self.max_exact = max_exact
        self.n_permutations = n_permutations
        self.max_samples = max_samples
        self.majority_class = majority_class
        self.random_state = random_state
        self.min_samples = min_samples

    def initialize(self):
        self.rng_ = np.random.default_rng(self.random_state)
        self.pooled_ = []
        self.next_evaluation_ = 1
        self.interval_ = 1
        self.stable_ = 0
        self.last_ = None  # (phi, subset accuracy, standard errors), last evaluation
        return self

    def _evaluates(self, net, epoch: int) -> bool:
        """Whether this epoch computes the Shapley values (see the class doc)."""
        n = len(net.module_.modalities)
        return n <= 2 or self.order != "shapley" or epoch >= self.next_evaluation_

    def _schedule_next(self, epoch: int, changed: bool) -> None:
        self.stable_ = 0 if changed else self.stable_ + 1
        if changed:
            self.interval_ = 1
        elif self.stable_ >= 2:
            self.interval_ = min(2 * self.interval_, 8)
        self.next_evaluation_ = epoch + self.interval_

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        n = len(net.module_.modalities)
        if self.order == "random" and len(net.history) == 0:
            net.training_order_ = [int(i) for i in self.rng_.permutation(n)]

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        net.history.record("train_order", list(net.training_order_))
        self.evaluates_ = self._evaluates(net, len(net.history))
        if not self.evaluates_:
            return
        n = len(net.module_.modalities)
        self.plan_ = ShapleyPlan.make(
            n,
            max_exact=self.max_exact,
            n_permutations=self.n_permutations,
            random_state=self.rng_,
        )
        self.masks_ = [int(m) for m in self.plan_.masks if m]
        self.orders_ = self._shapley_orders(net.module_.orders)
        evaluated = self._evaluation_set(net, dataset_train, dataset_valid)
        if hasattr(net, "shared_subsets_") and evaluated is dataset_valid:
            net.shared_orders_ = self.orders_
            # the validation pass computes the coalitions' predictions too
            net.shared_subsets_ = [members(m) for m in self.masks_]
            net.shared_predictions_ = []

    @staticmethod
    def _shapley_orders(orders):
        """The orders whose restrictions give each coalition's accuracy.

        Every inference order up to three modalities. Above, the first
        inference order alone: the coalitions' chains are then the
        ``2**n - 1`` subsequences of one order, which share their prefixes
        (71 trie nodes at six modalities instead of 149 for three orders). It
        is the same order every epoch, so the values of successive epochs
        stay comparable: cycling through the orders, one per epoch, made the
        training order change 2.5 times as often on mfeat-6.
        """
        if len(orders[0]) <= 3:
            return list(orders)
        return [orders[0]]

    def _evaluation_set(self, net, dataset_train, dataset_valid):
        dataset = dataset_valid if dataset_valid is not None else dataset_train
        if self.max_samples is not None and len(dataset) > self.max_samples:
            keep = np.sort(
                np.random.default_rng(self.random_state).choice(
                    len(dataset), self.max_samples, replace=False
                )
            )
            dataset = torch.utils.data.Subset(dataset, keep.tolist())
        return dataset

    def _pool(self, y_pred, y_true):
        """This epoch's predictions with enough recent ones to reach ``min_samples``."""
        self.pooled_.append((self.masks_, y_pred, y_true))
        window = max(1, -(-self.min_samples // max(len(y_true), 1)))
        # a plan with other coalitions (sampled Shapley) cannot be pooled
        recent = [p for p in self.pooled_[-window:] if p[0] == self.masks_]
        self.pooled_ = self.pooled_[-window:]
        return (
            np.concatenate([p[1] for p in recent], axis=1),
            np.concatenate([p[2] for p in recent]),
        )

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        tic = time.perf_counter()
        net.history.record("shapley_evaluated", self.evaluates_)
        if not self.evaluates_:
            phi, accuracy, se = self.last_
            self._record(net, phi, accuracy, se)
            net.history.record("shapley_dur", time.perf_counter() - tic)
            return
        plan, masks = self.plan_, self.masks_
        shared = getattr(net, "shared_predictions_", None)
        if getattr(net, "shared_subsets_", None) is not None and shared:
            y_pred, y_true = _predictions(shared, self.majority_class)
        else:
            dataset = self._evaluation_set(net, dataset_train, dataset_valid)
            loader = net.get_iterator(dataset, training=False)
            y_pred, y_true = subset_predictions(
                net.module_,
                loader,
                [members(m) for m in masks],
                net.device,
                self.majority_class,
                self.orders_,
            )
        if hasattr(net, "shared_subsets_"):
            net.shared_subsets_, net.shared_predictions_ = None, []
        n_rows = len(y_true)
        y_pred, y_true = self._pool(y_pred, y_true)
        correct = {0: y_true == self.majority_class}
        correct.update({m: p == y_true for m, p in zip(masks, y_pred)})
        accuracy = {m: float(np.mean(c)) for m, c in correct.items()}
        phi = plan.shapley(accuracy)
        _, se = shapley_standard_errors(plan, correct, n_independent=n_rows)
        self.last_ = (phi, accuracy, se)
        self._record(net, phi, accuracy, se)
        previous = list(net.training_order_)
        net.training_order_ = self._next_order(phi, previous)
        self._schedule_next(len(net.history), net.training_order_ != previous)
        net.history.record("shapley_dur", time.perf_counter() - tic)

    @staticmethod
    def _record(net, phi, accuracy, se):
        net.history.record("shapley", phi.tolist())
        net.history.record("shapley_se", se.tolist())
        net.history.record(
            "phi",
            " ".join(f"{name}:{v:.3f}" for name, v in zip(net.module_.modalities, phi)),
        )
        net.history.record("subset_accuracy", {str(m): a for m, a in accuracy.items()})

    def _next_order(self, phi, previous):
        n = len(phi)
        if self.order == "shapley":
            # ascending value; ties keep the order of the epoch before
            rank = {m: r for r, m in enumerate(previous)}
            return sorted(range(n), key=lambda m: (phi[m], rank[m]))
        if self.order == "random":
            return [int(i) for i in self.rng_.permutation(n)]
        return list(range(n))
