"""A local stand-in for the Vonage Messages API, for tests, demos and benchmarks.

Start it with ``python -m emulator``; see docs/emulator.md for the endpoints and magic numbers.
"""
