"""Evaluation: the golden set, metrics, and the runner behind `suggester eval` and `bench`."""
