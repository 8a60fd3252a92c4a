"""Training: the LightningModule, optimizers and schedule, callbacks, loggers, and fit().

`fit` and the module are imported when first named: the optimizer and the schedule
(`tinylm.training.optim`) are usable without loading Lightning.
"""

from tinylm.utils.lazy import lazy_exports

__all__ = ["GPTLightningModule", "TrainingResult", "fit"]

__getattr__ = lazy_exports(
    __name__,
    {
        "GPTLightningModule": "tinylm.training.module",
        "TrainingResult": "tinylm.training.train",
        "fit": "tinylm.training.train",
    },
)
