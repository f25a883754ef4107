"""The benchmarks (README "Benchmark"): scripts run as modules from the repository root, e.g.
``python -m bench.bench`` (``make bench``), so that they import each other and the product as packages."""
