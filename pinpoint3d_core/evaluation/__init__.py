"""Evaluation: metrics, the simulated-user harness and a non-learned baseline."""
