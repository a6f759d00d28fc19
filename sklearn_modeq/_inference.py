"""Prediction with the chain model: which states to compute and how to weigh them.

An :class:`InferencePlan` is built from a fitted estimator's settings and is
passed explicitly to every batch, so prediction reads the model and never
changes it: concurrent ``predict_proba`` calls from several threads, with
different ``inference_order`` settings, do not interfere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skorch.utils import to_tensor

from ._data import SAMPLE_WEIGHT_KEY
from .nn.combiner import CandidateCombiner


@dataclass(frozen=True)
class InferencePlan:
    """The order groups whose states are computed, and how they are combined.

    ``combiner`` None averages the groups' states with equal weight (a single
    group: hybrid orders, or the last training order); otherwise the groups are
    candidates weighed per sample by the combiner. ``supported`` (bool per
    modality, or None for no gate) applies :func:`gated_presence` first.
    """

    groups: list
    combiner: CandidateCombiner | None = None
    supported: torch.Tensor | None = None

    def fuse(self, module, feats, present):
        """Fused state (batch, h) and logits (batch, n_classes) of one batch,
        from its adapter outputs and presence mask (``module.encode``)."""
        if self.supported is not None:
            present = gated_presence(present, self.supported.to(present.device))
        states = module.averaged_states(feats, present, self.groups)
        if self.combiner is None:
            state = states.mean(dim=0)
            return state, module.head(state)
        available = module.availability(present, self.groups)
        logits = module.head(states)
        weights = self.combiner.weights(logits, available)
        state = self.combiner.combine(states, weights)
        temperature = self.combiner.temperature(available).to(state.dtype)[:, None]
        return state, self.combiner.combine(logits, weights) / temperature


def gated_presence(present, supported):
    """``present`` without the unsupported modalities, in the rows that have a
    supported one; rows with none keep what they have.

    Parameters
    ----------
    present : Tensor of shape (batch, n_modalities), bool
    supported : Tensor of shape (n_modalities,), bool

    Returns
    -------
    present : Tensor of shape (batch, n_modalities), bool
    """
    gated = present & supported
    return torch.where(gated.any(dim=1, keepdim=True), gated, present)


def _batches(net, X):
    """Batches of model inputs (no sample weights) on the net's device."""
    dataset = net.get_dataset(X)
    for xb, yb in net.get_iterator(dataset, training=False):
        xb = to_tensor(xb, device=net.device)
        weights = xb.get(SAMPLE_WEIGHT_KEY)
        yield {k: v for k, v in xb.items() if k != SAMPLE_WEIGHT_KEY}, yb, weights


def fused_outputs(net, X, plan: InferencePlan, coalitions=(None,)):
    """Fused states and logits of every sample of ``X``, for each coalition.

    Each batch is read and goes through the adapters once; every coalition then
    treats the modalities outside it as absent for every sample.

    Parameters
    ----------
    net : AlternatingNet
        Fitted net; its module is in evaluation mode.
    X : dict of str to ndarray, or Dataset
        Validated, standardised inputs.
    plan : InferencePlan
    coalitions : sequence of (tuple of int or None), default=(None,)
        Modality indices kept present; None keeps every modality.

    Returns
    -------
    states : ndarray of shape (n_coalitions, n_samples, h)
    logits : ndarray of shape (n_coalitions, n_samples, n_classes)
    covered : ndarray of shape (n_coalitions, n_samples), bool
        False where no modality is left (their outputs are meaningless).
    """
    module = net.module_
    n = len(module.modalities)
    keep = []
    for coalition in coalitions:
        mask = torch.ones(n, dtype=torch.bool, device=net.device)
        if coalition is not None:
            mask[:] = False
            mask[list(coalition)] = True
        keep.append(mask)
    states, logits, covered = [], [], []
    with torch.no_grad():
        for inputs, _, _ in _batches(net, X):
            feats, present = module.encode(inputs)
            parts = []
            for mask in keep:
                kept = present & mask
                state, logit = plan.fuse(module, feats, kept)
                parts.append((state, logit.double(), kept.any(dim=1)))
            for out, k in ((states, 0), (logits, 1), (covered, 2)):
                out.append(torch.stack([p[k] for p in parts]).cpu().numpy())
    return (
        np.concatenate(states, axis=1),
        np.concatenate(logits, axis=1),
        np.concatenate(covered, axis=1),
    )


def drop_at_random(inputs, rate: float, generator: torch.Generator):
    """Each modality of each sample made absent with probability ``rate``,
    never all of a sample's present modalities."""
    names = list(inputs)
    present = torch.stack([~torch.isnan(inputs[k][:, 0]) for k in names], dim=1)
    drop = torch.rand(present.shape, generator=generator) < rate
    drop = drop.to(present.device) & present
    emptied = ~(present & ~drop).any(dim=1)
    drop[emptied] = False  # keep such samples whole
    return {
        k: torch.where(drop[:, m, None], torch.full_like(v, float("nan")), v)
        for m, (k, v) in enumerate(inputs.items())
    }


def gate_rows(inputs, supported):
    """The rows :func:`gated_presence` changes, with the unsupported
    modalities made absent (all-NaN), and the bool mask of those rows."""
    present = torch.stack([~torch.isnan(v[:, 0]) for v in inputs.values()], dim=1)
    gated = gated_presence(present, supported.to(present.device))
    changed = (gated != present).any(dim=1)
    kept = gated[changed]
    rows = {
        k: torch.where(
            kept[:, m, None], v[changed], torch.full_like(v[changed], float("nan"))
        )
        for m, (k, v) in enumerate(inputs.items())
    }
    return rows, changed


def candidate_logits(net, X, groups, *, drop_rates=(), seed=0, supported=None):
    """Candidate logits on held-out data, for fitting a combiner.

    Each sample is seen as it is and once more per rate in ``drop_rates`` with
    modalities removed at random at that rate, so the combiner is fitted for
    incomplete samples too. With ``supported`` (bool per modality), every
    such row that the Shapley gate would change is also seen gated
    (:func:`gate_rows`), so the combiner is fitted for the presence patterns
    the gate makes as often as they occur at prediction.

    Returns
    -------
    logits : Tensor of shape (n_groups, n_rows, n_classes)
    available : Tensor of shape (n_groups, n_rows), bool
    y : Tensor of shape (n_rows,)
    weights : Tensor of shape (n_rows,) or None
    """
    module = net.module_
    generator = torch.Generator().manual_seed(seed)
    logits, available, ys, ws = [], [], [], []
    with torch.no_grad():
        for inputs, yb, wb in _batches(net, X):
            yb = torch.as_tensor(np.asarray(yb))
            for rate in (0.0, *drop_rates):
                seen = drop_at_random(inputs, rate, generator) if rate else inputs
                views = [(seen, slice(None))]
                if supported is not None:
                    gated, changed = gate_rows(seen, supported)
                    if bool(changed.any()):
                        views.append((gated, changed))
                for view, rows in views:
                    states, avail = module.group_states(view, groups)
                    logits.append(module.head(states).float().cpu())
                    available.append(avail.cpu())
                    ys.append(yb[rows.cpu() if torch.is_tensor(rows) else rows])
                    if wb is not None:
                        ws.append(wb[rows].float().cpu())
    weights = torch.cat(ws) if ws else None
    return torch.cat(logits, 1), torch.cat(available, 1), torch.cat(ys), weights
