"""Sphinx configuration for the skkd documentation.

Build (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import importlib.util
from pathlib import Path

import skkd

DOCS_DIR = Path(__file__).resolve().parent

# -- Project -----------------------------------------------------------------
project = "skkd"
author = "skkd developers"
copyright = "skkd developers"
version = skkd.__version__
release = skkd.__version__

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_generated_benchmarks.rst",  # pulled into benchmarks.rst with ``include``
    "Thumbs.db",
    ".DS_Store",
]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
nitpicky = False
default_role = "literal"

# -- autodoc / autosummary / numpydoc ----------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_member_order = "bysource"
autoclass_content = "class"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- sphinx-gallery ----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": "True",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
}

# -- HTML --------------------------------------------------------------------
if importlib.util.find_spec("pydata_sphinx_theme") is not None:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
    }
else:
    html_theme = "alabaster"
html_title = f"skkd {release}"
html_static_path = []
html_show_sourcelink = False


# -- Benchmark results -------------------------------------------------------
def _write_benchmark_section():
    """Write ``_generated_benchmarks.rst`` from what ``docs/benchmarks/`` holds.

    ``benchmarks.rst`` includes that file. It shows the demo table when
    ``benchmarks/demo.md`` exists, then every other Markdown table and PNG
    figure written by ``skkd bench``; otherwise it says that no benchmark was
    run before this build. Markdown is shown verbatim (no Markdown parser is
    required to build the documentation).
    """
    bench_dir = DOCS_DIR / "benchmarks"
    lines = []
    demo = bench_dir / "demo.md"
    if demo.is_file():
        lines += [
            "Demo results",
            "------------",
            "",
            "Written by ``skkd demo --save docs/benchmarks/demo.md``:",
            "",
            ".. literalinclude:: benchmarks/demo.md",
            "   :language: text",
            "",
        ]
    else:
        lines += [
            "Demo results",
            "------------",
            "",
            "The demo benchmark was not run before this build of the "
            "documentation, so ``docs/benchmarks/demo.md`` is not shown here. "
            "Run ``skkd demo --save docs/benchmarks/demo.md`` and rebuild to "
            "include it.",
            "",
        ]
    tables = sorted(
        p for p in bench_dir.glob("*.md") if p.name not in {"demo.md", "README.md"}
    )
    figures = sorted(bench_dir.glob("*.png"))
    if tables or figures:
        lines += ["Benchmark suites", "----------------", ""]
    for path in tables:
        lines += [
            f".. literalinclude:: benchmarks/{path.name}",
            "   :language: text",
            f"   :caption: benchmarks/{path.name}",
            "",
        ]
    for path in figures:
        lines += [
            f".. figure:: benchmarks/{path.name}",
            "   :width: 90%",
            "",
            f"   ``benchmarks/{path.name}``",
            "",
        ]
    target = DOCS_DIR / "_generated_benchmarks.rst"
    text = "\n".join(lines)
    # rewrite only on change, so Sphinx does not rebuild benchmarks.rst needlessly
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


_write_benchmark_section()


# -- Hooks -------------------------------------------------------------------
def _skip_generated_members(app, what, name, obj, skip, options):
    """Skip the ``set_<method>_request`` methods scikit-learn generates.

    scikit-learn adds them to every estimator class that declares metadata
    requests; their docstrings point into scikit-learn's own documentation.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_generated_members)
