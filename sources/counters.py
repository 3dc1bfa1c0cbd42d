"""The Prometheus counter the sources keep: PurpleAir API points spent, by endpoint (in its own
module, imported once, since `sources.points` also runs as a script)."""

from __future__ import annotations

from prometheus_client import Counter

#: PurpleAir API points spent, by endpoint (`sources.points`: priced from rows and fields).
POINTS = Counter("purpleair_points", "PurpleAir API points spent", ["endpoint"])
