"""Behaviour of ShapleyAlternatingClassifier: training, inference, sklearn tooling."""

import copy
import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_modeq import ShapleyAlternatingClassifier, SliceDict


def imbalanced(n=240, seed=0, strong=2.5, weak=0.4):
    """Two modalities: 'strong' separates the classes well, 'weak' barely."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    centers_s = rng.normal(size=(3, 6))
    centers_w = rng.normal(size=(3, 5))
    X = {
        "strong": strong * centers_s[y] + rng.normal(size=(n, 6)),
        "weak": weak * centers_w[y] + rng.normal(size=(n, 5)),
    }
    return X, y


def small(**kwargs):
    # the validation split's combiner: cross-fitting it, tested on its own
    # below, would fit 5 more models on data this small
    params = dict(
        hidden_size=16, max_epochs=4, lr=5e-3, random_state=0, combiner_cv=None
    )
    return ShapleyAlternatingClassifier(**{**params, **kwargs})


@pytest.fixture(scope="module")
def fitted():
    X, y = imbalanced()
    return small(max_epochs=12, lr=1e-2).fit(X, y), X, y


def test_fitted_attributes(fitted):
    clf, X, y = fitted
    assert clf.modalities_ == ["strong", "weak"]
    assert clf.n_features_per_modality_ == {"strong": 6, "weak": 5}
    assert clf.n_features_in_ == 11
    assert clf.n_iter_ == 12
    assert clf.shapley_history_.shape == (12, 2)
    assert len(clf.order_history_) == 12
    assert all(sorted(o) == ["strong", "weak"] for o in clf.order_history_)
    assert clf.training_order_ == clf.order_history_[-1]
    assert len(clf.history_[:, "train_loss"]) == 12
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])


def test_weak_modality_is_scheduled_first(fitted):
    clf, _, _ = fitted
    # epoch 1 uses declaration order; from then on the Shapley order applies
    assert clf.order_history_[0] == ("strong", "weak")
    assert all(order[0] == "weak" for order in clf.order_history_[1:])
    assert (clf.shapley_history_[:, 0] > clf.shapley_history_[:, 1]).all()


def test_learns_and_beats_the_weak_modality_alone(fitted):
    clf, X, y = fitted
    assert clf.score(X, y) > 0.85
    assert clf.score({"weak": X["weak"]}, y) < clf.score(X, y)


def test_shapley_values_follow_efficiency(fitted):
    clf, _, _ = fitted
    for epoch, phi in zip(clf.history_, clf.shapley_history_):
        acc = epoch["subset_accuracy"]
        assert phi.sum() == pytest.approx(acc["3"] - acc["0"])


def test_shapley_values_come_with_their_standard_errors(fitted):
    clf, _, _ = fitted
    se = np.asarray(clf.history_[:, "shapley_se"])
    assert se.shape == clf.shapley_history_.shape
    # the strong modality's value is far above its error, the weak one's less so
    assert (se > 0).all() and (clf.shapley_history_[:, 0] > 2 * se[:, 0]).all()


def test_predict_proba_is_a_distribution(fitted):
    clf, X, _ = fitted
    proba = clf.predict_proba(X)
    assert proba.shape == (240, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])


def test_string_labels():
    X, y = imbalanced()
    labels = np.array(["angry", "happy", "sad"])[y]
    clf = small(max_epochs=2).fit(X, labels)
    assert set(clf.predict(X)) <= set(labels)
    np.testing.assert_array_equal(clf.classes_, ["angry", "happy", "sad"])


def test_same_seed_same_model_other_seed_other_model():
    X, y = imbalanced(n=90)
    p1 = small(max_epochs=2).fit(X, y).predict_proba(X)
    p2 = small(max_epochs=2).fit(X, y).predict_proba(X)
    p3 = small(max_epochs=2, random_state=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_fit_leaves_the_global_torch_rng_alone():
    X, y = imbalanced(n=60)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    small(max_epochs=1).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_roundtrip_gives_identical_probabilities(fitted, dump):
    clf, X, _ = fitted
    if dump == "pickle":
        restored = pickle.loads(pickle.dumps(clf))
    else:
        buffer = io.BytesIO()
        joblib.dump(clf, buffer)
        buffer.seek(0)
        restored = joblib.load(buffer)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


def test_clone_before_and_after_fit(fitted):
    clf, _, _ = fitted
    for est in (small(), clf):
        cloned = clone(est)
        assert cloned.get_params() == est.get_params()
        assert not hasattr(cloned, "net_")


def test_one_row_alone_equals_the_same_row_in_a_batch(fitted):
    clf, X, _ = fitted
    X = {k: v.copy() for k, v in X.items()}
    X["weak"][7] = np.nan
    batch = clf.predict_proba(X)
    for row in (0, 7, 239):
        alone = clf.predict_proba({k: v[row : row + 1] for k, v in X.items()})
        np.testing.assert_allclose(alone[0], batch[row], rtol=1e-6, atol=1e-7)


def test_missing_modalities_at_predict(fitted):
    clf, X, y = fitted
    X_missing = {k: v.copy() for k, v in X.items()}
    X_missing["strong"][::2] = np.nan
    proba = clf.predict_proba(X_missing)
    # samples that lost 'strong' are predicted from 'weak' alone
    weak_only = clf.predict_proba({"weak": X["weak"][::2]})
    np.testing.assert_allclose(proba[::2], weak_only, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        proba[1::2], clf.predict_proba(X)[1::2], rtol=1e-6, atol=1e-7
    )


def test_training_with_missing_modalities():
    X, y = imbalanced()
    rng = np.random.RandomState(0)
    X["strong"][rng.rand(240) < 0.3] = np.nan
    clf = small(max_epochs=12, lr=1e-2).fit(X, y)
    assert np.isfinite(clf.shapley_history_).all()
    assert clf.score(X, y) > 0.6


def test_inference_order_is_read_at_prediction_time(fitted):
    clf, X, _ = fitted
    other = copy.deepcopy(clf)
    outputs = {}
    for mode in ("weighted", "hybrid", "last"):
        outputs[mode] = other.set_params(inference_order=mode).predict_proba(X)
    assert not np.allclose(outputs["hybrid"], outputs["last"])
    assert not np.allclose(outputs["hybrid"], outputs["weighted"])
    # switching back restores the default prediction
    other.set_params(inference_order="weighted")
    np.testing.assert_allclose(other.predict_proba(X), clf.predict_proba(X))


def test_gated_presence_drops_unsupported_modalities_only_where_a_supported_one_is():
    from sklearn_modeq._inference import gated_presence

    present = torch.tensor(
        [[1, 1, 1], [0, 1, 1], [0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=torch.bool
    )
    supported = torch.tensor([True, False, False])
    gated = gated_presence(present, supported)
    expected = [[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 0, 0], [0, 1, 0]]
    assert gated.int().tolist() == expected


@pytest.fixture(scope="module")
def with_label_free_view():
    """The fixture's data with a third view that carries no label information."""
    X, y = imbalanced(n=300)
    X["noise"] = np.random.RandomState(1).normal(size=(300, 4))
    return small(max_epochs=12, lr=1e-2).fit(X, y), X, y


def test_shapley_gate_predicts_without_unsupported_modalities(with_label_free_view):
    # issue 12: a modality without a measurable Shapley value cannot drag the
    # fused prediction down; the gate is read at prediction time
    clf, X, _ = with_label_free_view
    assert "noise" not in clf.supported_modalities_
    assert "strong" in clf.supported_modalities_
    without = {k: v for k, v in X.items() if k != "noise"}
    np.testing.assert_allclose(clf.predict_proba(X), clf.predict_proba(without))
    other = copy.deepcopy(clf).set_params(shapley_gate=False)
    assert not np.allclose(other.predict_proba(X), clf.predict_proba(X))
    # a sample with only the unsupported modality is predicted from it
    alone = {"noise": X["noise"]}
    np.testing.assert_allclose(clf.predict_proba(alone), other.predict_proba(alone))


def test_supported_modalities_follow_the_kept_epochs_shapley_values(
    with_label_free_view,
):
    clf, _, _ = with_label_free_view
    # the epoch whose weights early stopping kept
    row = [i for i, r in enumerate(clf.history_) if r.get("valid_loss_best")][-1]
    phi = np.asarray(clf.history_[row, "shapley"])
    se = np.asarray(clf.history_[row, "shapley_se"])
    assert clf.supported_modalities_ == [
        m for m, p, e in zip(clf.modalities_, phi, se) if p > 2 * e
    ]


def test_combiner_is_also_fitted_on_the_held_out_rows_as_the_gate_sees_them(
    with_label_free_view,
):
    # the gated presence patterns are fitted as often as the gate makes them:
    # every held-out row the gate changes comes once more, gated
    from sklearn_modeq._inference import candidate_logits, gate_rows
    from sklearn_modeq.nn.combiner import candidate_groups

    clf, X, y = with_label_free_view
    net = clf.net_
    groups, _ = candidate_groups(net.module_.orders, len(clf.modalities_))
    data = clf._validated({k: v[:40] for k, v in X.items()})
    data["noise"][:5] = np.nan  # five rows the gate leaves alone
    dataset = net.get_dataset(data, y[:40])
    supported = torch.tensor([m in clf.supported_modalities_ for m in clf.modalities_])
    plain = candidate_logits(net, dataset, groups)
    gated = candidate_logits(net, dataset, groups, supported=supported)
    assert plain[0].shape[1] == 40 and gated[0].shape[1] == 75
    torch.testing.assert_close(gated[0][:, :40], plain[0])
    np.testing.assert_array_equal(gated[2][40:], y[5:40])
    # the extra rows are the gated ones: predicted without the noise view
    noise = clf.modalities_.index("noise")
    singles = gated[1][-len(clf.modalities_) :]
    assert not singles[noise, 40:].any() and singles[noise, 5:40].all()
    rows, changed = gate_rows(
        {k: torch.as_tensor(v) for k, v in data.items()}, supported
    )
    assert changed.sum() == 35 and torch.isnan(rows["noise"]).all()


def test_last_order_predicts_with_the_kept_training_order(fitted):
    from sklearn_modeq._inference import InferencePlan, fused_outputs

    clf, X, _ = fitted
    last = copy.deepcopy(clf).set_params(inference_order="last")
    index = [clf.modalities_.index(m) for m in clf.training_order_]
    _, (logits,), _ = fused_outputs(
        clf.net_, clf._validated(X), InferencePlan([[tuple(index)]])
    )
    np.testing.assert_allclose(last.predict_proba(X).argmax(1), logits.argmax(1))


def test_transform_is_the_state_the_head_classifies(fitted):
    clf, X, _ = fitted
    for mode in ("weighted", "hybrid", "last"):
        est = copy.deepcopy(clf).set_params(inference_order=mode)
        fused = est.transform(X)
        assert fused.shape == (len(X["strong"]), clf.hidden_size)
        head = est.net_.module_.head
        logits = head(torch.as_tensor(fused)).detach().double().numpy()
        if mode == "weighted":  # every modality present: one pattern
            complete = torch.ones(len(est.combiner_.kinds), 1, dtype=torch.bool)
            logits = logits / float(est.combiner_.temperature(complete)[0])
        proba = np.exp(logits - logits.max(1, keepdims=True))
        proba /= proba.sum(1, keepdims=True)
        np.testing.assert_allclose(proba, est.predict_proba(X), atol=1e-5)
    names = clf.get_feature_names_out()
    assert len(names) == clf.hidden_size
    assert names[0] == "shapleyalternatingclassifier0"


def test_concurrent_predictions_with_different_settings_equal_sequential(fitted):
    # Regression (issue 15): inference set the order on the shared torch module
    # at every call, so threads with different settings could race.
    from concurrent.futures import ThreadPoolExecutor

    clf, X, _ = fitted
    models = {
        m: copy.copy(clf).set_params(inference_order=m)
        for m in ("weighted", "hybrid", "last")
    }
    jobs = [("weighted", "hybrid", "last", "hybrid")[i % 4] for i in range(8)]
    expected = {m: models[m].predict_proba(X) for m in models}
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda m: models[m].predict_proba(X), jobs))
    for mode, proba in zip(jobs, got):
        np.testing.assert_array_equal(proba, expected[mode])


def test_combiner_is_fitted_on_the_validation_split(fitted):
    clf, _, _ = fitted
    combiner = clf.combiner_
    n_orders = len(clf.net_.module_.orders)
    assert combiner.kinds.tolist() == [0] * n_orders + [1, 2]
    moved = (
        combiner.bias - combiner.prior_bias
    ).abs().sum() + combiner.slope.abs().sum()
    assert float(moved) > 0


def test_without_validation_split_the_combiner_keeps_its_prior():
    X, y = imbalanced(n=120)
    clf = small(max_epochs=2, validation_fraction=0.0).fit(X, y)
    torch.testing.assert_close(clf.combiner_.bias, clf.combiner_.prior_bias)
    assert float(clf.combiner_.slope.abs().sum()) == 0.0


def test_combiner_cross_fitting_follows_combiner_cv():
    X, y = imbalanced(n=120)  # a validation split of 24 rows
    assert ShapleyAlternatingClassifier().get_params()["combiner_cv"] == "auto"
    assert small(max_epochs=2, combiner_cv="auto").fit(X, y).combiner_folds_ == 5
    assert small(max_epochs=2, combiner_cv=None).fit(X, y).combiner_folds_ == 0
    assert small(max_epochs=2, combiner_cv=3).fit(X, y).combiner_folds_ == 3
    # folds are capped by the smallest class (2 rows of class 2)
    y_rare = y.copy()
    y_rare[y == 2] = 0
    y_rare[[2, 5]] = 2
    clf = small(max_epochs=1, combiner_cv=4, validation_fraction=0.0)
    assert clf.fit(X, y_rare).combiner_folds_ == 2
    X, y = imbalanced(n=600)  # 120 validation rows: the validation split
    assert small(max_epochs=1, combiner_cv="auto").fit(X, y).combiner_folds_ == 0


def test_cross_fitted_combiner_sees_each_row_from_a_model_fitted_without_it(
    monkeypatch,
):
    from sklearn_modeq import classifier

    taken = []

    def spy(arrays, rows):
        taken.append(np.asarray(rows))
        return take_rows(arrays, rows)

    take_rows = classifier.take_rows
    monkeypatch.setattr(classifier, "take_rows", spy)
    X, y = imbalanced(n=90)
    clf = small(max_epochs=1, combiner_cv=3).fit(X, y)
    fitted_on, held_out = taken[0::2], taken[1::2]
    assert len(held_out) == clf.combiner_folds_ == 3
    for fit_rows, held_rows in zip(fitted_on, held_out):
        assert not set(fit_rows) & set(held_rows)
        assert len(fit_rows) + len(held_rows) == len(y)
    np.testing.assert_array_equal(np.sort(np.concatenate(held_out)), np.arange(90))
    moved = (clf.combiner_.bias - clf.combiner_.prior_bias).abs().sum()
    assert float(moved) > 0


def test_interrupted_cross_fitting_falls_back_to_the_validation_split(monkeypatch):
    from sklearn_modeq._training import AlternatingNet

    fit = AlternatingNet.fit
    calls = []

    def interrupt_the_second_fold(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the final model, fold 1, then fold 2
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(AlternatingNet, "fit", interrupt_the_second_fold)
    X, y = imbalanced(n=120)
    with pytest.warns(
        UserWarning, match="cross-fitting of the combiner was interrupted"
    ):
        clf = small(max_epochs=1, combiner_cv=3).fit(X, y)
    assert clf.combiner_folds_ == 0
    assert clf.predict_proba(X).shape == (120, 3)


def test_tied_shapley_values_keep_the_previous_order():
    from sklearn_modeq._training import ShapleyScheduler

    scheduler = ShapleyScheduler()
    assert scheduler._next_order(np.array([0.2, 0.1, 0.2]), [2, 1, 0]) == [1, 2, 0]
    assert scheduler._next_order(np.array([0.2, 0.1, 0.2]), [0, 1, 2]) == [1, 0, 2]


def test_small_validation_split_pools_recent_epochs():
    from sklearn_modeq._training import ShapleyScheduler

    scheduler = ShapleyScheduler(min_samples=10).initialize()
    scheduler.masks_ = [1, 2, 3]
    truth = np.array([0, 1, 0, 1])
    for epoch in range(4):
        pred, y = scheduler._pool(np.full((3, 4), epoch % 2), truth)
    # ceil(10 / 4) = 3 epochs pooled: the last three
    assert pred.shape == (3, 12) and y.shape == (12,)
    np.testing.assert_array_equal(pred[0], [1] * 4 + [0] * 4 + [1] * 4)


@pytest.mark.parametrize(
    "params",
    [
        {"alternation": "epoch"},
        {"order": "random"},
        {"order": "fixed"},
        {"mapping": True},
        {"mapping": True, "tau": 0.3, "memory": False},
        {"memory": False},
        {"adapter_layers": 2, "dropout": 0.1},
        {"standardize": False},
        {"validation_fraction": 0.0},
        {"shapley_max_exact": 1, "shapley_n_permutations": 4},
        {"shapley_max_samples": 10},
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
)
def test_variants_fit_and_predict(params):
    X, y = imbalanced(n=120)
    clf = small(max_epochs=3, **params).fit(X, y)
    assert clf.predict_proba(X).shape == (120, 3)
    assert clf.shapley_history_.shape == (3, 2)


def test_fixed_order_never_changes():
    X, y = imbalanced(n=120)
    clf = small(order="fixed").fit(X, y)
    assert set(clf.order_history_) == {("strong", "weak")}


def test_epoch_alternation_makes_one_pass_per_modality():
    X, y = imbalanced(n=100)

    def train_batches(alternation):
        clf = small(max_epochs=1, alternation=alternation, batch_size=10).fit(X, y)
        return [
            b["train_batch_size"]
            for b in clf.history_[-1]["batches"]
            if "train_batch_size" in b
        ]

    # 80 training rows: 8 batches of 10, once per modality in "epoch" mode
    assert train_batches("batch") == [10] * 8
    assert train_batches("epoch") == [10] * 16


def test_early_stopping_restores_best_weights():
    X, y = imbalanced(n=150)
    clf = small(max_epochs=40, lr=0.05, early_stopping=True, n_iter_no_change=2).fit(
        X, y
    )
    assert clf.n_iter_ < 40
    losses = clf.history_[:, "valid_loss"]
    best = int(np.argmin(losses))
    assert clf.training_order_ == clf.order_history_[best]


def test_sample_weight_changes_the_fit():
    X, y = imbalanced(n=120)
    w = np.where(y == 0, 5.0, 1.0)
    p_plain = small(max_epochs=2).fit(X, y).predict_proba(X)
    p_weighted = small(max_epochs=2).fit(X, y, sample_weight=w).predict_proba(X)
    # upweighting class 0 raises its predicted probability on average
    assert p_weighted[:, 0].mean() > p_plain[:, 0].mean()


def test_single_array_is_one_modality():
    X, y = imbalanced()
    clf = small(max_epochs=12, lr=1e-2).fit(X["strong"], y)
    assert clf.modalities_ == ["x"]
    assert clf.score(X["strong"], y) > 0.85


def test_pipeline_on_a_single_array():
    X, y = imbalanced()
    clf = small(max_epochs=12, lr=1e-2, standardize=False)
    pipe = make_pipeline(StandardScaler(), clf).fit(X["strong"], y)
    assert pipe.score(X["strong"], y) > 0.85


def test_mapping_is_off_by_default_and_tau_without_it_warns():
    X, y = imbalanced(n=60)
    assert small(max_epochs=1).fit(X, y).net_.module_.mapping is None
    mapped = small(max_epochs=1, mapping=True).fit(X, y).net_.module_.mapping
    assert mapped.tau == 0.2  # tau=None: the paper's middle value
    with pytest.warns(UserWarning, match="tau=0.3 has no effect with mapping=False"):
        small(max_epochs=1, tau=0.3).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = small(max_epochs=1, mapping=True, tau=0.3).fit(X, y).net_
    assert net.module_.mapping.tau == 0.3


def test_grid_search_over_tau_and_lr_on_a_slicedict():
    X, y = imbalanced(n=150)
    search = GridSearchCV(
        small(max_epochs=2, mapping=True),
        {"tau": [0.1, 0.2, 0.3], "lr": [1e-4, 1e-3]},
        cv=2,
    ).fit(SliceDict(**X), y)
    assert len(search.cv_results_["params"]) == 6
    assert search.best_params_["tau"] in (0.1, 0.2, 0.3)
    assert search.best_estimator_.predict(SliceDict(**X)).shape == (150,)


def test_cross_val_score_with_two_processes():
    X, y = imbalanced(n=150)
    serial = cross_val_score(small(max_epochs=2), SliceDict(**X), y, cv=3)
    parallel = cross_val_score(small(max_epochs=2), SliceDict(**X), y, cv=3, n_jobs=2)
    np.testing.assert_array_equal(serial, parallel)


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = imbalanced(n=60)
    small(max_epochs=2, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "phi" in out
    assert "strong:" in out
    small(max_epochs=2, verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu_accuracy():
    X, y = imbalanced()
    cpu = small().fit(X, y)
    gpu = small(device="cuda").fit(X, y)
    assert gpu.net_.module_.head.weight.is_cuda
    assert abs(gpu.score(X, y) - cpu.score(X, y)) < 0.1
    np.testing.assert_allclose(gpu.predict_proba(X).sum(1), 1.0)


@pytest.mark.parametrize("n_modalities", [2, 3])
def test_shapley_from_the_validation_pass_equals_a_separate_pass(
    monkeypatch, n_modalities
):
    # The validation pass computes every coalition's predictions along with the
    # loss; they must equal a separate evaluation after the epoch.
    from sklearn_modeq import _training
    from sklearn_modeq._training import ShapleyScheduler

    X, y = imbalanced()
    if n_modalities == 3:
        X["third"] = X["weak"][:, ::-1] + 0.1
    shared = small(max_epochs=4).fit(X, y)
    original = ShapleyScheduler._evaluation_set

    def separate(self, net, dataset_train, dataset_valid):
        # a copy of the validation set is not the set the validation pass saw
        dataset = original(self, net, dataset_train, dataset_valid)
        return torch.utils.data.Subset(dataset, list(range(len(dataset))))

    def without_rng(*args, **kwargs):
        # a DataLoader draws a seed from torch's RNG; keep the training stream equal
        with torch.random.fork_rng():
            return predictions(*args, **kwargs)

    predictions = _training.subset_predictions
    monkeypatch.setattr(ShapleyScheduler, "_evaluation_set", separate)
    monkeypatch.setattr(_training, "subset_predictions", without_rng)
    alone = small(max_epochs=4).fit(X, y)
    for key in ("subset_accuracy", "train_order"):
        assert shared.history_[:, key] == alone.history_[:, key], key
    # one trie walk or two: the same sums, possibly rounded differently
    np.testing.assert_allclose(
        shared.history_[:, "valid_loss"], alone.history_[:, "valid_loss"], rtol=1e-6
    )
    np.testing.assert_allclose(shared.shapley_history_, alone.shapley_history_)


def test_shapley_values_are_evaluated_less_often_once_the_order_is_stable():
    # issue 13: above two modalities a stable order is re-checked every 2nd,
    # 4th, then 8th epoch; at two every epoch
    from sklearn_modeq._training import ShapleyScheduler

    scheduler = ShapleyScheduler().initialize()
    evaluated = []

    class Net:
        module_ = type("M", (), {"modalities": list("abcd")})()

    for epoch in range(1, 31):
        evaluates = scheduler._evaluates(Net, epoch)
        evaluated.append(evaluates)
        if evaluates:
            scheduler._schedule_next(epoch, changed=epoch in (1, 9))
    epochs = [e + 1 for e, ev in enumerate(evaluated) if ev]
    # stable after 1: intervals 1, 2, 4; the change at 9 resets; then 1, 2, 4, 8, 8
    assert epochs == [1, 2, 3, 5, 9, 10, 11, 13, 17, 25]
    two = type("N", (), {"module_": type("M", (), {"modalities": list("ab")})()})
    assert all(scheduler._evaluates(two, e) for e in range(1, 31))
    three = type("N", (), {"module_": type("M", (), {"modalities": list("abc")})()})
    assert not scheduler._evaluates(three, 26)


def test_shapley_pass_uses_one_inference_order_above_three_modalities(monkeypatch):
    # issue 13: at 4+ modalities the coalitions' chains are the subsequences of
    # one order (the first inference order, every epoch), not of all of them
    from sklearn_modeq.nn.chain import ModalityChainNet

    seen = []
    coalition_groups = ModalityChainNet.coalition_groups

    def spy(self, subsets, orders=None):
        if orders is not None:
            seen.append((len(self.modalities), [tuple(o) for o in orders], self.orders))
        return coalition_groups(self, subsets, orders)

    monkeypatch.setattr(ModalityChainNet, "coalition_groups", spy)
    rng = np.random.RandomState(0)
    X, y = imbalanced(n=90)
    small(max_epochs=2).fit(X, y)
    X["third"] = rng.normal(size=(90, 3))
    X["fourth"] = rng.normal(size=(90, 2))
    small(max_epochs=2).fit(X, y)
    by_n = {n: (orders, inference) for n, orders, inference in seen}
    assert by_n[2][0] == [tuple(o) for o in by_n[2][1]]
    orders, inference = by_n[4]
    assert len(inference) == 3 and orders == [tuple(inference[0])]


def test_skipped_evaluations_repeat_the_last_values():
    rng = np.random.RandomState(0)
    X, y = imbalanced(n=160)
    X["third"] = rng.normal(size=(160, 3))
    X["fourth"] = rng.normal(size=(160, 2))
    clf = small(max_epochs=12).fit(X, y)
    evaluated = clf.history_[:, "shapley_evaluated"]
    assert evaluated[0] and not all(evaluated)
    for epoch in range(1, 12):
        if not evaluated[epoch]:
            np.testing.assert_array_equal(
                clf.shapley_history_[epoch], clf.shapley_history_[epoch - 1]
            )


def test_prediction_chunks_are_sized_for_the_device(monkeypatch):
    from sklearn_modeq import _base

    assert _base.inference_batch_size("cpu", 64) == _base.INFERENCE_BATCH_SIZE
    assert _base.inference_batch_size("cpu", 10_000) == 10_000

    class Props:
        total_memory = 80 * 2**30  # an 80 GiB GPU

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props)
    assert _base.inference_batch_size("cuda", 64) == 81_920
    Props.total_memory = 2 * 2**30
    assert _base.inference_batch_size("cuda:0", 64) == 4096
