"""tinylm: a GPT written from scratch, trained with PyTorch Lightning and configured with Hydra."""

from tinylm.utils.quiet_logs import quiet_library_noise

__version__ = "0.1.0"

quiet_library_noise()  # before Lightning, torch or tqdm is imported: scripts, notebooks, tests
