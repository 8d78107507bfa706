"""skkd's benchmark suites (not installed with the package).

This package sits at the root of the source repository, beside ``skkd/``.
Each public module ``benchmarks.<suite>`` exposes ``main(argv) -> int`` and
runs as ``skkd bench <suite> ...`` or, from the repository root, as
``python -m benchmarks.<suite> ...``. The suites write their CSV, Markdown and
PNG results under the checkout's ``docs/benchmarks/`` unless ``--out`` says
otherwise; ``_runner`` (resumable parallel jobs) and ``_report`` (report
pages, plots, shared command-line flags) are the shared machinery.
"""
