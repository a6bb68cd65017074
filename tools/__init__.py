"""Developer tools: the local stack (emulator + service) for the demo, tests and benchmarks."""
