"""Sinks: where anomalies, readings, dead letters and run totals go."""
