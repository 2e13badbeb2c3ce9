"""libre-dump's benchmarks: ``python -m bench`` (see docs/performance.md)."""
