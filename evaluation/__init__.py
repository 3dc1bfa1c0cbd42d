"""Evaluation: how well the flow's output matches the simulator's ground truth."""
