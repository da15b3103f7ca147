"""Training: losses, iterative click simulation, data loading, the trainer and its CLI."""
