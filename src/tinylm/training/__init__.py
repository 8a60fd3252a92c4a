"""Training: the LightningModule, optimizers and schedule, callbacks, loggers, and fit()."""

from tinylm.training.module import GPTLightningModule
from tinylm.training.train import TrainingResult, fit

__all__ = ["GPTLightningModule", "TrainingResult", "fit"]
