"""Every Python block of README.md and docs/*.rst runs, and the ones that
train a model beat chance on their data.

The blocks of one page run in order in one namespace, so a block may use what
an earlier block of the page defined; fragments that use names the page
never defines (``X_src``, ``teacher`` ...) get them from :data:`SETUP`: small
data and models of the same kind. A comment right before a block adds checks
(invisible in the rendered page): ``.. test: check EXPR`` in reStructuredText
or ``<!-- test: check EXPR -->`` in Markdown asserts ``EXPR`` after the block
ran; ``test: slow`` marks the page slow; ``test: needs-har`` runs the block
only with the UCI-HAR subjects beside the checkout (its ``"/data/har"`` is
replaced by their folder); ``test: no-ci`` skips the block under CI (Dask
process clusters, see ``tests/conftest.py``). Shell blocks (``pip``,
``skkd``, ``python -m`` ...) are not run here: ``.ci/run`` runs the README's.
"""

import os
import re
import textwrap
from pathlib import Path

import pytest

from .conftest import SHARED_HAR

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "README.md",
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("docs/*.rst")),
]
SHELL = ("pip ", "skkd ", "python ", "python3 ", "pytest", "bash ", "export ", "ruff ")
ANNOTATION = re.compile(r"^\s*(?:\.\.|<!--)\s*test:\s*(.*?)\s*(?:-->)?\s*$")

#: what a page's fragments use without defining it
_HAR = """
from skkd.datasets import load_har_scenario
d = load_har_scenario("2->11")
X_src, y_src, X_tgt = d.X_src, d.y_src, d.X_tgt
"""
_TEACHER = """
from sklearn.frozen import FrozenEstimator
from skkd import DANNClassifier, KDClassifier, UniKDClassifier
teacher = DANNClassifier(module__widths=(32, 64, 64), random_state=0)
teacher.fit(X_src, y_src, X_tgt)
"""
SETUP = {
    "docs/user_guide.rst": _HAR + "from skkd import DANNClassifier\n"
    "est = DANNClassifier(module__widths=(8, 16, 16), random_state=0)\n",
    "docs/model_selection.rst": _HAR + _TEACHER,
    "docs/ecosystem.rst": _HAR
    + _TEACHER
    + "student = KDClassifier(FrozenEstimator(teacher), random_state=0)\n",
    "docs/reliability.rst": _HAR + _TEACHER,
}


def extract_blocks(text, markdown=False):
    """``[(code, annotations)]`` of the Python blocks of a page, in order."""
    lines = text.splitlines()
    blocks, pending, i = [], [], 0
    while i < len(lines):
        line = lines[i]
        note = ANNOTATION.match(line)
        if note:
            pending.append(note.group(1))
            i += 1
            continue
        if markdown and line.strip() == "```python":
            end = lines.index("```", i + 1)
            blocks.append(("\n".join(lines[i + 1 : end]), pending))
            pending, i = [], end + 1
            continue
        stripped = line.strip()
        is_python = stripped == ".. code-block:: python"
        is_literal = stripped.endswith("::") and not stripped.startswith("..")
        if not markdown and (is_python or is_literal):
            indent = len(line) - len(line.lstrip())
            j, body = i + 1, []
            while j < len(lines) and (
                not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
            ):
                if body or (lines[j].strip() and not lines[j].strip().startswith(":")):
                    body.append(lines[j])
                j += 1
            code = textwrap.dedent("\n".join(body)).strip()
            if code and not (is_literal and code.startswith(SHELL)):
                blocks.append((code, pending))
            pending, i = [], j
            continue
        i += 1
    return blocks


def _params():
    for page in PAGES:
        blocks = extract_blocks((ROOT / page).read_text(), page.endswith(".md"))
        if not blocks:
            continue
        notes = {n.split()[0] for _, ns in blocks for n in ns}
        marks = [pytest.mark.slow] if "slow" in notes else []
        yield pytest.param(page, marks=marks, id=page)


def test_extract_blocks_reads_code_blocks_literals_and_annotations():
    rst = textwrap.dedent(
        """
        Install::

            pip install skkd

        .. test: check x == 2
        .. code-block:: python
           :caption: two

           x = 1
           x += 1

        Then::

            y = x
        """
    )
    assert extract_blocks(rst) == [("x = 1\nx += 1", ["check x == 2"]), ("y = x", [])]
    md = "<!-- test: check a -->\n```python\na = 1\n```\n```bash\nls\n```\n"
    assert extract_blocks(md, markdown=True) == [("a = 1", ["check a"])]


def test_every_training_page_checks_a_score():
    # a page that fits a model must say what it reaches: a wrong recipe fails here
    for page in PAGES:
        blocks = extract_blocks((ROOT / page).read_text(), page.endswith(".md"))
        fits = any(".fit(" in code for code, _ in blocks)
        checks = [n for _, ns in blocks for n in ns if n.startswith("check")]
        assert checks or not fits, f"{page} trains a model but checks no score"


@pytest.mark.parametrize("page", list(_params()))
def test_page_code_runs_and_learns(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the blocks write (ONNX, checkpoints)
    blocks = extract_blocks((ROOT / page).read_text(), page.endswith(".md"))
    namespace = {"__name__": "__docs__"}
    exec(compile(SETUP.get(page, ""), f"{page}:setup", "exec"), namespace)
    for k, (code, notes) in enumerate(blocks):
        if "no-ci" in notes and os.environ.get("CI"):
            continue  # Dask process cluster: intermittent hang (tests/conftest.py)
        if "needs-har" in notes:
            if not SHARED_HAR.is_dir():
                continue
            code = code.replace('"/data/har"', repr(str(SHARED_HAR)))
        exec(compile(code, f"{page}:block{k}", "exec"), namespace)
        for note in notes:
            if note.startswith("check "):
                expr = note[len("check ") :]
                value = eval(expr, namespace)
                assert value, f"{page} block {k}: {expr} is false"


def _extras():
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as handle:
        extras = tomllib.load(handle)["project"]["optional-dependencies"]
    return {
        name: [re.match(r"[A-Za-z0-9_.-]+", req).group(0) for req in reqs]
        for name, reqs in extras.items()
    }


def test_install_page_describes_every_extra_and_its_packages():
    text = (ROOT / "docs" / "install.rst").read_text()
    extras = _extras()
    entries = dict(
        re.findall(r"^``skkd\[(\w+)\]``\n((?:   .*\n)+)", text, flags=re.MULTILINE)
    )
    assert set(entries) == set(extras)
    for name, packages in extras.items():
        described = entries[name].lower()
        missing = [p for p in packages if p.lower() not in described]
        assert not missing, f"skkd[{name}] installs {missing}, not described"


def test_docs_name_only_extras_that_exist():
    extras = set(_extras())
    files = [ROOT / "README.md", *ROOT.glob("docs/*.rst"), *ROOT.glob("skkd/**/*.py")]
    for path in files:
        for group in re.findall(r"skkd\[([\w,]+)\]", path.read_text()):
            unknown = set(group.split(",")) - extras
            assert not unknown, f"{path.name} names extra(s) {unknown}"
