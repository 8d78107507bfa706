"""Where the benchmarks write, and how paths are recorded in what they write.

The suites never write into the current folder by default: results go to the
checkout's ``docs/benchmarks/`` (found from this package's location) and
fitted teachers to a git-ignored ``.teacher-cache/`` folder inside the output
folder. Files meant to be committed (CSV, Markdown) record paths relative to
the checkout root, so they carry no absolute path of the machine that wrote
them: see :func:`portable_path`, :func:`portable_argv` and
:func:`scrub_paths`.
"""

import os
import re
import tempfile
from pathlib import Path

__all__ = [
    "DEFAULT_OUT",
    "PATH_FLAGS",
    "ROOT",
    "TEACHER_CACHE",
    "portable_argv",
    "portable_path",
    "scrub_paths",
]

#: root folder of the source checkout that holds this package
ROOT = Path(__file__).resolve().parents[1]
#: default output folder of every suite: the checkout's docs/benchmarks
DEFAULT_OUT = ROOT / "docs" / "benchmarks"
#: name of the teacher-cache folder inside an output folder (git-ignored)
TEACHER_CACHE = ".teacher-cache"
#: command-line flags whose value is a path
PATH_FLAGS = ("--out", "--data-home", "--teacher-cache", "--cache-dir")


def _bases(root):
    """``(folder, label)`` pairs a recorded path is made relative to, in order."""
    return [
        (root, ""),
        (root.parent, ".."),
        (Path(tempfile.gettempdir()), "$TMPDIR"),
        (Path.home(), "~"),
    ]


def _forms(path):
    """The path as given and with its symbolic links resolved."""
    return dict.fromkeys([Path(os.path.abspath(path)), Path(os.path.realpath(path))])


def portable_path(path, root=None):
    """A path as the benchmarks record it: never absolute.

    Parameters
    ----------
    path : str or path-like
        Absolute, or relative to the current folder.
    root : path-like, optional
        Checkout root (default: the one holding this package).

    Returns
    -------
    text : str
        Relative to ``root`` when the path lies inside it or beside it (in
        ``root``'s parent folder, e.g. ``../shared/data/uci_har``); else
        ``$TMPDIR/...`` under the temporary folder, ``~/...`` under the home
        folder, and otherwise relative to ``root`` all the same.

    Examples
    --------
    >>> portable_path(ROOT / "docs" / "benchmarks")
    'docs/benchmarks'
    >>> portable_path(ROOT.parent / "shared" / "data" / "uci_har")
    '../shared/data/uci_har'
    >>> portable_path(ROOT)
    '.'
    """
    root = ROOT if root is None else Path(root)
    for form in _forms(path):
        for base, label in _bases(root):
            for base_form in _forms(base):
                try:
                    rest = form.relative_to(base_form).as_posix()
                except ValueError:
                    continue
                parts = [p for p in (label, rest) if p and p != "."]
                return "/".join(parts) or "."
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # another drive (Windows): keep the name only
        return Path(path).name


def portable_argv(argv, root=None):
    """Command-line arguments with every path made portable.

    The value of a path flag (:data:`PATH_FLAGS`, as ``--out X`` or
    ``--out=X``) is resolved against the current folder and recorded with
    :func:`portable_path`; any other absolute path is recorded the same way.

    Parameters
    ----------
    argv : list of str
        Arguments as typed.
    root : path-like, optional
        Checkout root (default: the one holding this package).

    Returns
    -------
    argv : list of str

    Examples
    --------
    >>> portable_argv(["--quick", "--data-home", str(ROOT.parent / "data")])
    ['--quick', '--data-home', '../data']
    >>> portable_argv([f"--out={ROOT / 'docs' / 'benchmarks'}", "--seeds", "0"])
    ['--out=docs/benchmarks', '--seeds', '0']
    """
    out = []
    after_flag = False
    for arg in map(str, argv):
        flag, eq, value = arg.partition("=")
        if after_flag or os.path.isabs(arg):
            arg = portable_path(arg, root)
        elif eq and flag in PATH_FLAGS:
            arg = f"{flag}={portable_path(value, root)}"
        out.append(arg)
        after_flag = arg in PATH_FLAGS
    return out


def scrub_paths(text, root=None):
    """Rewrite the absolute paths in a text with :func:`portable_path`.

    Catches the paths under the checkout, beside it, under the temporary
    folder or under the home folder (e.g. in an error message).

    Parameters
    ----------
    text : str
    root : path-like, optional
        Checkout root (default: the one holding this package).

    Returns
    -------
    text : str

    Examples
    --------
    >>> scrub_paths(f"FileNotFoundError('{ROOT.parent}/data/x.npz')")
    "FileNotFoundError('../data/x.npz')"
    """
    root = ROOT if root is None else Path(root)
    prefixes = {str(f) for base, _ in _bases(root) for f in _forms(base)}
    prefixes = sorted((p.rstrip("/") for p in prefixes if p != "/"), key=len)
    if not prefixes:
        return text
    alternatives = "|".join(re.escape(p) for p in reversed(prefixes))
    # a prefix must end a name (/a/b2 is not under /a/b), then the path goes on
    pattern = re.compile(
        f"(?:{alternatives})(?![\\w-]|\\.\\w)(?:/[^\\s`'\"|,;:()\\[\\]<>]*)?"
    )
    return pattern.sub(lambda m: portable_path(m.group(0), root), text)
