"""Speed tables: run each from the repository root as `python -m benchmarks.<name>` (the Makefile's bench
targets do)."""
