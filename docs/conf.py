"""Sphinx configuration of the sklearn_modeq documentation.

Build: ``pip install -e ".[docs]"`` then, from the repository root,
``python -m sphinx -W -b html docs docs/_build/html``.

The user guide pages include the README's sections and the Markdown pages of
``docs/`` as they are (MyST), so each text has one source; the API reference is
generated from the docstrings (autosummary + numpydoc); the tutorial notebook is
rendered as committed, never executed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sklearn_modeq  # noqa: E402

project = "sklearn_modeq"
author = "sklearn_modeq developers"
copyright = "2026, sklearn_modeq developers"
release = version = sklearn_modeq.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",  # Markdown (MyST) and notebooks
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "generated/**/.*", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# -- API reference ----------------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # a module page lists its __all__
autodoc_typehints = "none"  # types are in the numpydoc Parameters sections
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document members our classes define or inherit from our own bases only,
    not scikit-learn's, skorch's or torch's (``get_params``, ``set_fit_request``)."""
    if what != "class" or skip:
        return skip
    module = getattr(obj, "__module__", None) or getattr(
        getattr(obj, "fget", None), "__module__", ""
    )
    return not str(module).startswith("sklearn_modeq")


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)


# -- Markdown and notebooks -------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # render the committed notebook; never execute it
# the README's sections start at their own heading level (## or ###)
suppress_warnings = ["myst.header"]

# -- HTML -------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_modeq {release}"
html_theme_options = {"show_toc_level": 2, "navigation_with_keys": False}
