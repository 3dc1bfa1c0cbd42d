"""Benchmarks (not tests): readings/s of the flow against the engine's limit and a baseline."""
