"""The column-batch hot path: one shard's rows of one poll move as numpy columns, not objects.

`batch.Columns` is what the source emits per poll and shard; `batch.Work` is that batch as it
moves through the stages (each a vectorised twin of a per-reading stage of `dataflows.steps`,
with one object per shard holding every sensor's state in arrays indexed by slot). Per-reading
Python objects exist only for what leaves the flow: anomalies, dead letters, requested readings.
"""
