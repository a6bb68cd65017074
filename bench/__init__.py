"""Benchmark and soak harness: `python -m bench.run` (make bench), `python -m bench.soak`."""
