"""Dataflows: the runnable Bytewax applications (`python -m bytewax.run dataflows.NAME:flow`)."""
