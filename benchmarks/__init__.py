"""Benchmarks: the processor side by side with its baselines on one broker; `make bench`."""
