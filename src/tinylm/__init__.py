"""tinylm: a GPT written from scratch, trained with PyTorch Lightning and configured with Hydra."""

from tinylm.experiments.run_folders import register_resolver

__version__ = "0.1.0"

# conf/hydra/default.yaml names run folders with ${unique_dir:...}; registering it on import
# makes it available to every entry point (train, sweeps, the processes DDP starts) before
# Hydra composes a config.
register_resolver()
