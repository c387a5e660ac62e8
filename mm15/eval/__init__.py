"""Evaluation: benchmarks, metrics, category averages and MMBase."""
