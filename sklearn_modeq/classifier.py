"""ShapleyAlternatingClassifier: the paper's method as a scikit-learn classifier."""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import BaseModalityClassifier
from ._callbacks import check_finite_proba
from ._data import take_rows
from ._inference import InferencePlan, candidate_logits, fused_outputs
from ._threads import limit_torch_threads
from ._training import AlternatingNet, ShapleyScheduler
from .nn import ModalityChainNet
from .nn.combiner import CandidateCombiner, candidate_groups, fit_combiner

#: Rates at which the combiner's held-out samples are also seen with
#: modalities removed at random, so its weights serve incomplete samples.
COMBINER_DROP_RATES = (0.25, 0.5)

#: ``combiner_cv="auto"`` cross-fits the combiner with this many folds when the
#: validation split has fewer rows than ``CROSS_FIT_BELOW``.
CROSS_FIT_FOLDS = 5
CROSS_FIT_BELOW = 100

#: A modality is *supported* when its Shapley value exceeds this many
#: standard errors (``shapley_gate``).
SUPPORT_Z = 2.0

#: The cross-modal mapping's threshold when ``mapping=True`` and ``tau=None``.
DEFAULT_TAU = 0.2


class ShapleyAlternatingClassifier(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseModalityClassifier
):
    """Shapley-guided alternating training with cross-modal memory fusion.

    Trains small per-modality adapters, an LSTM-style memory cell (with the
    paper's thresholded cross-modal mapping on request) and one shared linear
    head on precomputed embeddings, one modality at a time. After every epoch
    each modality's Shapley value (its marginal contribution to validation
    accuracy over all coalitions of modalities) is computed, and the next epoch
    trains the modalities from the weakest to the strongest. Prediction weighs,
    per sample, the fused states of several modality orders and of each modality
    alone, with weights fitted on the validation split; the paper's equal-weight
    average over orders (hybrid-order inference) is ``inference_order="hybrid"``.

    Parameters
    ----------
    hidden_size : int, default=128
        Size ``h`` of every adapter's output, the chain state and the head input.
    tau : float or None, default=None
        Correlation threshold of the cross-modal mapping, in [0, 1) (the paper
        picks from {0.1, 0.2, 0.3}); None is 0.2. Used only with
        ``mapping=True``: setting it otherwise warns.
    lr : float, default=1e-3
        AdamW learning rate. Chosen by measurement on embeddings
        (``docs/defaults.md``); the paper's 1e-4 is for backbones trained end
        to end and was 3 to 4 points worse on average here.
    max_epochs : int, default=100
        Maximum number of epochs (early stopping usually ends sooner).
    batch_size : int, default=64
        Training mini-batch size.
    weight_decay : float, default=0.01
        AdamW weight decay.
    alternation : {"batch", "epoch"}, default="batch"
        ``"batch"``: each mini-batch takes one optimiser step per modality, along
        the current order; ``"epoch"``: each epoch makes one full pass over the
        data per modality. See Notes for why ``"batch"`` is the default.
    order : {"shapley", "random", "fixed"}, default="shapley"
        How the next epoch's order is chosen: ascending Shapley value (the
        method), a seeded random permutation, or declaration order (ablations).
    mapping : bool, default=False
        Map each next modality through the thresholded cross-modal correlation
        (the paper's Eq. 9-11, with ``tau``) before the memory cell fuses it;
        False passes it unmapped. Off by default: measured on every suite task
        and on data outside the suite, the mapping raised fused accuracy nowhere
        by more than its noise, cost up to 0.5 points on the digits tasks and
        took about a quarter of the fit time (``docs/defaults.md``). The mapped
        features feed the cell's learned linear map ``W_x``, so a fixed linear
        map before it adds no expressiveness; where many correlations pass
        ``tau`` it averages features together.
    memory : bool, default=True
        Fuse with the memory cell (False: add the state and the next modality).
    inference_order : {"weighted", "hybrid", "last"}, default="weighted"
        ``"weighted"``: the states of each inference order and of each modality
        alone, weighed per sample by ``combiner_`` (see Notes); ``"hybrid"``:
        the equal-weight average over the inference orders (Algorithm 1);
        ``"last"``: only the order of the last training epoch (the paper's
        fixed-order analysis, Figure 5). Read at prediction time, so it can be
        switched on a fitted model.
    shapley_gate : bool, default=True
        Predict without the modalities whose Shapley value at the kept epoch
        is not above twice its standard error (no measurable contribution to
        validation accuracy; ``supported_modalities_`` are the others), in
        every sample that has a supported modality, so a modality that carries
        nothing cannot drag the fused prediction down. A sample with only
        unsupported modalities is predicted from them. False uses every
        present modality (the paper). Read at prediction time, so it can be
        switched on a fitted model.
    combiner_cv : int, "auto" or None, default="auto"
        Which held-out predictions ``combiner_`` is fitted on. None: the
        validation split's. An int ``k >= 2``: out-of-fold predictions of ``k``
        more models with the same settings, each fitted on ``k - 1`` stratified
        folds of the training data (stacking, as scikit-learn's
        ``StackingClassifier`` does), which costs ``k`` more fits. ``"auto"``:
        5 folds when the validation split has fewer than 100 rows (a few
        held-out samples cannot tell a fused prediction from a single
        modality's), the validation split otherwise. Folds are capped by the
        smallest class's count; out-of-core data, and a fit interrupted with
        Ctrl-C, use the validation split.
    max_orders : int, default=3
        Number of inference orders: every order when there are at most this
        many (2 modalities, or 3 with ``max_orders >= 6``), otherwise a fixed
        seeded sample balanced over positions and adjacent pairs (rows of
        Williams designs). ``max_orders=720`` with ``inference_order="hybrid"``
        is the paper's exhaustive average for up to 6 modalities.
    shapley_max_exact : int, default=6
        Exact Shapley values (all ``2**n`` coalitions) up to this many
        modalities; Monte-Carlo permutation sampling above. A coalition's
        accuracy is that of the model restricted to it, averaging the
        restrictions of the inference orders (of the first one alone above 3
        modalities, where the coalitions' chains then share its prefixes).
    shapley_n_permutations : int, default=32
        Permutations sampled (in antithetic pairs) above ``shapley_max_exact``.
    shapley_max_samples : int or None, default=None
        Evaluate the Shapley values on at most this many validation samples (a
        fixed seeded subsample); None uses the whole validation split.
    shapley_min_samples : int, default=50
        With fewer validation samples than this, the coalitions' accuracies
        pool the predictions of the last ``ceil(shapley_min_samples / n)``
        epochs, which smooths Shapley values that would otherwise tie.
    adapter_layers : int, default=1
        Linear -> ReLU blocks per adapter (the paper uses one).
    dropout : float, default=0.0
        Dropout in the adapters.
    standardize : bool, default=True
        Standardise each modality with mean and standard deviation from its
        present training rows (embeddings of different backbones live on very
        different scales).
    validation_fraction : float, default=0.2
        Stratified share of the training data held out for Shapley values and
        early stopping. With 0, Shapley values are computed on the training data.
    early_stopping : bool or "auto", default="auto"
        Stop when the validation loss has not improved for ``n_iter_no_change``
        epochs and restore the best weights. ``"auto"`` stops early whenever
        there is a validation split (``validation_fraction > 0``): across the
        benchmark tasks it kept the accuracy of 100 full epochs at less than
        half the fit time (``docs/defaults.md``).
    n_iter_no_change : int, default=10
        Patience of early stopping.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, the validation split and the
        sampled orders. The caller's global torch RNG is left untouched.
    verbose : int, default=0
        0 silent, 1 one line per epoch, 2 also a progress bar.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_prior_ : ndarray of shape (n_classes,)
        Training class frequencies (the empty coalition predicts the most
        frequent class).
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
    shapley_history_ : ndarray of shape (`n_iter_`, n_modalities)
        Shapley value of each modality (columns as ``modalities_``) after each
        epoch.
    order_history_ : list of tuple of str
        The order each epoch trained the modalities in.
    training_order_ : tuple of str
        The order of the epoch whose weights the model keeps (used by
        ``inference_order="last"``).
    supported_modalities_ : list of str
        The modalities whose Shapley value at the kept epoch exceeds twice its
        standard error (all of them when none does); see ``shapley_gate``.
    history_ : skorch.History
        Per-epoch records: ``train_loss``, ``valid_loss``, ``shapley``,
        ``shapley_se`` (the standard errors of the Shapley values over the
        validation rows), ``subset_accuracy``, ``shapley_evaluated``,
        ``train_order``, durations.
        ``train_loss`` averages, over the alternating steps, the sum of each
        step's cross-entropy terms (chain, the modality's own, and the fusion
        term at the last step), so it is larger than ``valid_loss``, the
        cross-entropy of hybrid inference on the validation split.
    n_iter_ : int
        Number of epochs run (those completed, when ``fit`` was interrupted).
    net_ : AlternatingNet
        The fitted skorch net; ``net_.module_`` is the torch model.
    combiner_ : CandidateCombiner
        The per-sample weighing of ``inference_order="weighted"``: a bias and a
        confidence slope per kind of candidate (all orders; each modality
        alone) and a temperature, fitted on held-out predictions (see
        ``combiner_cv``; its prior when there are none).
    combiner_folds_ : int
        Folds of the cross-fitted combiner; 0 when it was fitted on the
        validation split (or is its prior).

    See Also
    --------
    sklearn_modeq.metrics.modality_shapley : Shapley values of a fitted model.
    sklearn_modeq.metrics.edm : Equilibrium deviation metric.

    Notes
    -----
    The model (DESIGN section 3) runs, for an order ``(pi_1, ..., pi_k)``, the
    state ``s = cell(0, f_{pi_1}(x_{pi_1}))`` through ``k - 1`` fusion steps:
    the next modality's adapter output ``Xhat = X_j`` is fused by
    ``[f, i, o] = sigmoid(W [s; Xhat] + b)``, ``s = o * tanh(f * s + i * Xhat)``
    (Eq. 12-14). With ``mapping=True`` (the paper's Eq. 9-11) ``X_j`` is first
    mapped, ``Xhat = X_j @ C.T``, where ``C`` is the Pearson correlation between
    the predecessor's and ``X_j``'s feature columns with entries ``<= tau``
    zeroed, a unit diagonal and rows normalised to sum to 1 (kept on ``X_j``'s
    scale); ``C`` is a running average over the training batches that use each
    ordered pair, used in training and at inference alike, so predictions do
    not depend on batch composition.

    Training the modality at position ``k`` continues the chain state the step
    for position ``k - 1`` left (the earlier adapters are frozen), adds the
    modality's own term ``CE(g(cell(0, f_k(x_k))))`` (Eq. 6), and updates that
    modality's adapter, the memory cell and the head; the step for the first
    position also trains the cell and the head along a random order of all
    modalities, so every order used at inference is trained.
    ``alternation="batch"`` is the default (``docs/alternation.md``).

    With ``inference_order="weighted"`` the candidates are the chain over each
    inference order and each modality alone; ``combiner_`` weighs their logits
    per sample by ``softmax(bias[kind] + slope[kind] * confidence)`` over the
    candidates available to the sample (``confidence``: negative normalised
    entropy) and divides by a temperature. It is fitted after training on
    held-out predictions (the validation split's, or out-of-fold ones on small
    data, ``combiner_cv``), as they are and with modalities removed at random,
    by regularised log-loss. Because the head is linear, ``transform`` returns the
    same weighted combination of states.

    With ``shapley_gate=True`` (every inference mode) a sample that has one of
    the ``supported_modalities_`` is predicted as if the others were absent: a
    modality whose Shapley value at the kept epoch is within twice its
    standard error of zero has shown no contribution on held-out data, and a
    view that carries no label information otherwise moves the fused state
    (measured on the suite's label-free tasks, ``docs/results.md``). The
    combiner is fitted for both settings: its held-out samples are seen as
    they are (and with modalities removed at random), and every one of those
    the gate changes is seen gated too, so the gated presence patterns are
    fitted as often as the gate makes them; the gate stays a prediction-time
    switch.

    References
    ----------
    .. [1] X. Shi, R. Zhang, J. Liu, Y. Liu, Q. Cheng, W. Lu. "Modality
       Equilibrium Matters: Minor-Modality-Aware Adaptive Alternating for
       Cross-Modal Memory Enhancement", arXiv:2506.00030, 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modeq import ShapleyAlternatingClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 60)
    >>> X = {"audio": y[:, None] + rng.normal(size=(60, 4)),
    ...      "visual": 0.3 * y[:, None] + rng.normal(size=(60, 3))}
    >>> clf = ShapleyAlternatingClassifier(
    ...     hidden_size=8, max_epochs=3, lr=1e-2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (60, 2)
    >>> clf.shapley_history_.shape
    (3, 2)
    """

    _parameter_constraints: dict = {
        **BaseModalityClassifier._parameter_constraints,
        "tau": [Interval(Real, 0, 1, closed="left"), None],
        "alternation": [StrOptions({"batch", "epoch"})],
        "order": [StrOptions({"shapley", "random", "fixed"})],
        "mapping": ["boolean"],
        "memory": ["boolean"],
        "inference_order": [StrOptions({"weighted", "hybrid", "last"})],
        "shapley_gate": ["boolean"],
        "max_orders": [Interval(Integral, 1, None, closed="left")],
        "shapley_max_exact": [Interval(Integral, 1, 16, closed="both")],
        "shapley_n_permutations": [Interval(Integral, 1, None, closed="left")],
        "shapley_max_samples": [Interval(Integral, 1, None, closed="left"), None],
        "shapley_min_samples": [Interval(Integral, 1, None, closed="left")],
        "combiner_cv": [
            Interval(Integral, 2, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
    }

    _net_class = AlternatingNet
    _module_class = ModalityChainNet

    def __init__(
        self,
        *,
        hidden_size=128,
        tau=None,
        lr=1e-3,
        max_epochs=100,
        batch_size=64,
        weight_decay=0.01,
        alternation="batch",
        order="shapley",
        mapping=False,
        memory=True,
        inference_order="weighted",
        shapley_gate=True,
        combiner_cv="auto",
        max_orders=3,
        shapley_max_exact=6,
        shapley_n_permutations=32,
        shapley_max_samples=None,
        shapley_min_samples=50,
        adapter_layers=1,
        dropout=0.0,
        standardize=True,
        validation_fraction=0.2,
        early_stopping="auto",
        n_iter_no_change=10,
        random_state=None,
        verbose=0,
        device="cpu",
    ):
        self.hidden_size = hidden_size
        self.tau = tau
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.alternation = alternation
        self.order = order
        self.mapping = mapping
        self.memory = memory
        self.inference_order = inference_order
        self.shapley_gate = shapley_gate
        self.combiner_cv = combiner_cv
        self.max_orders = max_orders
        self.shapley_max_exact = shapley_max_exact
        self.shapley_n_permutations = shapley_n_permutations
        self.shapley_max_samples = shapley_max_samples
        self.shapley_min_samples = shapley_min_samples
        self.adapter_layers = adapter_layers
        self.dropout = dropout
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    def _validate_fit_params(self):
        super()._validate_fit_params()
        if self.tau is not None and not self.mapping:
            # the l1_ratio-without-elasticnet case of scikit-learn: a setting
            # that would silently change nothing (e.g. a search over tau)
            warnings.warn(
                f"tau={self.tau!r} has no effect with mapping=False (the "
                "default); set mapping=True to use the cross-modal mapping.",
                UserWarning,
                stacklevel=3,
            )

    def _module_params(self):
        return {
            "tau": DEFAULT_TAU if self.tau is None else self.tau,
            "mapping": self.mapping,
            "memory": self.memory,
            "max_orders": self.max_orders,
            "order_seed": self._seed,
        }

    def _net_params(self):
        return {"alternation": self.alternation}

    def _extra_callbacks(self, seed, y):
        return [
            (
                "shapley_scheduler",
                ShapleyScheduler(
                    order=self.order,
                    max_exact=self.shapley_max_exact,
                    n_permutations=self.shapley_n_permutations,
                    max_samples=self.shapley_max_samples,
                    majority_class=int(np.argmax(np.bincount(y))),
                    random_state=seed,
                    min_samples=self.shapley_min_samples,
                ),
            )
        ]

    def _continue_fit(self, data, y):
        """Fit the candidate combiner on held-out predictions (stacking)."""
        module = self.net_.module_
        module.eval()
        groups, kinds = candidate_groups(module.orders, len(self.modalities_))
        n_kinds = 1 + len(self.modalities_)
        # prior: the paper's hybrid average, each modality alone weighing as
        # much as one order
        prior = [0.0] + [-math.log(len(module.orders))] * (n_kinds - 1)
        valid = None
        if self.validation_fraction > 0:
            _, valid = self.net_.get_split_datasets(data, y)
        n_valid = 0 if valid is None else len(valid)
        supported = self._supported()
        # the held-out rows are also seen as the gate would change them, so the
        # gated presence patterns are fitted as often as they will occur
        gate = None if supported.all() else torch.as_tensor(supported)
        self.combiner_folds_ = self._combiner_folds(data, y, n_valid)
        held_out = None
        if self.combiner_folds_:
            try:
                held_out = self._out_of_fold_candidates(data, y, groups, gate)
            except KeyboardInterrupt:
                warnings.warn(
                    f"{type(self).__name__}: the cross-fitting of the combiner "
                    "was interrupted; it is fitted on the validation split.",
                    UserWarning,
                    stacklevel=3,
                )
                self.combiner_folds_ = 0
        if held_out is None and n_valid:
            held_out = candidate_logits(
                self.net_,
                valid,
                groups,
                drop_rates=COMBINER_DROP_RATES,
                seed=self._seed,
                supported=gate,
            )
        if held_out is None:
            self.combiner_ = CandidateCombiner(kinds, prior).requires_grad_(False)
            return
        logits, available, y_valid, weights = held_out
        self.combiner_ = fit_combiner(
            logits.to(self.net_.device),
            available.to(self.net_.device),
            y_valid.to(self.net_.device),
            kinds,
            prior,
            sample_weight=weights,
        )

    def _combiner_folds(self, data, y, n_valid: int) -> int:
        """Folds to cross-fit the combiner on (``combiner_cv``); 0 for none."""
        if (
            self.combiner_cv is None
            or not isinstance(data, dict)  # out-of-core: no more passes over it
            or self._interrupted()
        ):
            return 0
        if self.combiner_cv == "auto":
            if not 0 < n_valid < CROSS_FIT_BELOW:
                return 0
            folds = CROSS_FIT_FOLDS
        else:
            folds = self.combiner_cv
        # every fold must be able to hold every class
        folds = min(folds, int(np.bincount(y).min()))
        return folds if folds >= 2 else 0

    def _out_of_fold_candidates(self, data, y, groups, supported=None):
        """Candidate logits of every training row from a model fitted without it.

        ``combiner_folds_`` models with this estimator's settings (the same
        inference orders, so the same candidates) are each fitted on the other
        folds, silently; they are discarded afterwards. An interruption of
        any of them ends the cross-fitting (KeyboardInterrupt).
        """
        folds = StratifiedKFold(
            self.combiner_folds_, shuffle=True, random_state=self._seed
        )
        parts = []
        for k, (fit_rows, held_rows) in enumerate(folds.split(np.zeros(len(y)), y)):
            seed = (self._seed + 1 + k) % (2**31)
            net = self._build_net(seed, y[fit_rows]).set_params(verbose=0)
            net.fit(take_rows(data, fit_rows), y[fit_rows])
            if dict(net.callbacks_)["interrupt_guard"].interrupted_:
                raise KeyboardInterrupt
            net.module_.eval()
            held_out = net.get_dataset(take_rows(data, held_rows), y[held_rows])
            parts.append(
                candidate_logits(
                    net,
                    held_out,
                    groups,
                    drop_rates=COMBINER_DROP_RATES,
                    seed=seed,
                    supported=supported,
                )
            )
        logits, available, labels, weights = zip(*parts)
        return (
            torch.cat(logits, 1),
            torch.cat(available, 1),
            torch.cat(labels),
            None if weights[0] is None else torch.cat(weights),
        )

    def _after_fit(self):
        history = self.net_.history
        self.shapley_history_ = np.asarray(history[:, "shapley"], dtype=float)
        self.order_history_ = [
            tuple(self.modalities_[i] for i in order)
            for order in history[:, "train_order"]
        ]
        self.training_order_ = self.order_history_[self._kept_epoch()]
        supported = self._supported()
        self.supported_modalities_ = [
            m for m, keep in zip(self.modalities_, supported) if keep
        ]
        self._n_features_out = self.hidden_size

    def _kept_epoch(self) -> int:
        """Index in the net's history of the epoch whose weights are kept."""
        history = self.net_.history
        if self._stops_early():
            best = [i for i, row in enumerate(history) if row.get("valid_loss_best")]
            if best:
                return best[-1]
        return len(history) - 1

    def _supported(self) -> np.ndarray:
        """Bool per modality: Shapley value at the kept epoch above
        ``SUPPORT_Z`` standard errors (every modality when none is)."""
        kept = self.net_.history[self._kept_epoch()]
        phi = np.asarray(kept["shapley"], dtype=float)
        supported = phi > SUPPORT_Z * np.asarray(kept["shapley_se"], dtype=float)
        return supported if supported.any() else np.ones_like(supported)

    # -- inference ------------------------------------------------------------------
    def _plan(self) -> InferencePlan:
        """What ``inference_order`` and ``shapley_gate`` compute (read at
        prediction time)."""
        module = self.net_.module_
        supported = None
        if self.shapley_gate and len(self.supported_modalities_) < len(
            self.modalities_
        ):
            supported = torch.tensor(
                [m in self.supported_modalities_ for m in self.modalities_]
            )
        if self.inference_order == "last":
            index = {name: i for i, name in enumerate(self.modalities_)}
            order = tuple(index[m] for m in self.training_order_)
            return InferencePlan([[order]], supported=supported)
        if self.inference_order == "hybrid":
            return InferencePlan([module.orders], supported=supported)
        groups, _ = candidate_groups(module.orders, len(self.modalities_))
        return InferencePlan(groups, self.combiner_, supported)

    def _fused(self, arrays):
        states, logits, _ = fused_outputs(self.net_, arrays, self._plan())
        return states[0], logits[0]

    def _predict_proba(self, arrays) -> np.ndarray:
        _, logits = self._fused(arrays)
        return check_finite_proba(self, _softmax(logits))

    def _predict_subsets(self, X, subsets):
        """Labels predicted with only each coalition's modalities present.

        Exactly ``predict`` on ``X`` with the other modalities absent; samples
        left with none of the coalition's modalities get the most frequent
        training class.
        """
        check_is_fitted(self)
        arrays = self._validated(X)
        with limit_torch_threads():
            _, logits, covered = fused_outputs(
                self.net_, arrays, self._plan(), coalitions=subsets
            )
        pred = np.where(
            covered, logits.argmax(axis=2), int(np.argmax(self.class_prior_))
        )
        return self.classes_[pred]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # the torch model computes in float32 whatever the input dtype
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def transform(self, X):
        """The fused representation the head classifies.

        Parameters
        ----------
        X : dict of str to array-like of shape (n_samples, d_m), or array-like
            As in :meth:`predict_proba`.

        Returns
        -------
        X_fused : ndarray of shape (n_samples, hidden_size)
            With ``inference_order="weighted"`` the candidate states weighted
            per sample; with ``"hybrid"`` the state averaged over the orders;
            with ``"last"`` the state of the last training order.
            ``predict_proba`` is the softmax of the head applied to it (divided
            by the combiner's temperature when weighted).
        """
        check_is_fitted(self)
        with limit_torch_threads():
            states, _ = self._fused(self._validated(X))
        return states


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
