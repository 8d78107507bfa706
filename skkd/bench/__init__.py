"""Benchmark suites behind ``skkd bench SUITE``.

Each public module ``skkd.bench.<suite>`` exposes ``main(argv) -> int`` and writes
its CSV, Markdown and PNG results under ``docs/benchmarks/``.
"""
