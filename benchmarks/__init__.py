"""One script per claim in BENCHMARKS.md, and the helpers they share (``common``).

Each script runs from the repository root both as ``python benchmarks/<name>.py`` and as
``python -m benchmarks.<name>``.
"""
