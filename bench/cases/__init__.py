"""Benchmark cases: every module here registers its cases with bench.core.case."""
