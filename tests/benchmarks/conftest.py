"""The benchmark is run by hand (`python tests/benchmarks/bench.py`), never collected by pytest."""

collect_ignore_glob = ["*"]
