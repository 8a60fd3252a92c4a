"""Data: text sources, the tokenized cache, and the LightningDataModules that serve windows."""

from tinylm.data.datamodule import TextDataModule, TokenDataModule
from tinylm.errors import DataError

__all__ = ["DataError", "TextDataModule", "TokenDataModule"]
