"""Fuzzing harness (atheris): ``python -m fuzz --seconds N [--target NAME]``.

See :mod:`fuzz.targets` for the targets and docs/reliability.md for how to use the results.
"""
