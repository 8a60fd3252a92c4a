"""Training: the LightningModule, optimizers and schedule, callbacks, and train()."""

from tinylm.training.module import GPTLightningModule
from tinylm.training.train import train

__all__ = ["GPTLightningModule", "train"]
