"""Experiments: unshared run folders, sweep jobs and their summary, wandb, run comparison."""
