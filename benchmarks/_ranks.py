"""Average ranks over blocks, the Friedman test, Nemenyi's post-hoc test and a
critical-difference diagram, as the time-series classification literature
compares classifiers over many data sets (Demšar 2006, JMLR 7).

The statistics come from scipy and scikit-posthocs; this module only arranges
benchmark rows into blocks (one per data set and seed) and writes the picture.
"""

import math

import numpy as np

__all__ = ["block_matrix", "rank_summary", "plot_critical_difference"]


def block_matrix(rows, methods, block_keys, value):
    """Scores as a ``(blocks, methods)`` DataFrame, complete blocks only.

    Parameters
    ----------
    rows : list of dict
        Benchmark rows with a ``"method"`` column, the ``block_keys`` and
        ``value``.
    methods : sequence of str
        The columns, in order.
    block_keys : sequence of str
        The columns that identify a block, e.g. ``("dataset", "seed")``.
    value : str
        The score column (higher is better).

    Returns
    -------
    pandas.DataFrame
        One row per block that has a finite score for every method.

    Examples
    --------
    >>> rows = [{"d": d, "method": m, "f1": f1}
    ...         for d, scores in (("a", (1, 2)), ("b", (3, 5)), ("c", (4, None)))
    ...         for m, f1 in zip("XY", scores)]
    >>> block_matrix(rows, ["X", "Y"], ["d"], "f1").to_dict("list")
    {'X': [1.0, 3.0], 'Y': [2.0, 5.0]}
    """
    import pandas as pd

    table = {}
    for r in rows:
        if r.get("method") in methods and r.get(value) is not None:
            block = tuple(r[k] for k in block_keys)
            table.setdefault(block, {})[r["method"]] = float(r[value])
    complete = {
        block: scores
        for block, scores in table.items()
        if all(math.isfinite(scores.get(m, math.nan)) for m in methods)
    }
    frame = pd.DataFrame.from_dict(complete, orient="index", columns=list(methods))
    frame.index = pd.Index(list(complete), tupleize_cols=False)
    return frame


def rank_summary(scores, alpha=0.05):
    """Average ranks (1 = best), Friedman's p-value, Nemenyi's p-values and CD.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``(blocks, methods)`` scores, higher is better (see :func:`block_matrix`).
    alpha : float, default=0.05
        Significance level of the critical difference.

    Returns
    -------
    dict
        ``ranks`` (Series, ascending), ``friedman_p``, ``nemenyi`` (DataFrame of
        pairwise p-values), ``cd`` (Nemenyi's critical difference in average
        rank) and ``n_blocks``.

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"A": [3.0, 2.0, 3.0, 3.0], "B": [2.0, 3.0, 2.0, 2.0],
    ...                        "C": [1.0, 1.0, 1.0, 1.0]})
    >>> summary = rank_summary(scores)
    >>> summary["ranks"].round(2).to_dict()
    {'A': 1.25, 'B': 1.75, 'C': 3.0}
    """
    import scikit_posthocs
    from scipy.stats import friedmanchisquare, studentized_range

    n_blocks, k = scores.shape
    # rank 1 is the best score; ties share their average rank
    ranks = scores.rank(axis=1, ascending=False).mean().sort_values()
    friedman_p = float(friedmanchisquare(*scores.T.values).pvalue)
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(scores.to_numpy())
    nemenyi.index = nemenyi.columns = list(scores.columns)
    # Demšar (2006), eq. 5: q_alpha is the studentized range over sqrt(2)
    q_alpha = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    cd = float(q_alpha * math.sqrt(k * (k + 1) / (6.0 * n_blocks)))
    return {
        "ranks": ranks,
        "friedman_p": friedman_p,
        "nemenyi": nemenyi,
        "cd": cd,
        "n_blocks": n_blocks,
    }


def plot_critical_difference(summary, path, title, alpha=0.05):
    """Write the critical-difference diagram of :func:`rank_summary` to ``path``.

    Methods joined by a bar are not significantly different (Nemenyi, ``alpha``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"A": [3.0, 2.0, 3.0], "B": [2.0, 3.0, 1.0],
    ...                        "C": [1.0, 1.0, 2.0]})
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cd.png"
    >>> plot_critical_difference(rank_summary(scores), path, "demo").exists()
    True
    """
    import scikit_posthocs
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 2.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scikit_posthocs.critical_difference_diagram(
        summary["ranks"], summary["nemenyi"], ax=ax, alpha=alpha
    )
    ax.set_title(
        f"{title}: average rank over {summary['n_blocks']} blocks "
        f"(Nemenyi CD {summary['cd']:.2f}, Friedman p={summary['friedman_p']:.2g})",
        fontsize=9,
        pad=24,  # above the rank axis's tick labels
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
