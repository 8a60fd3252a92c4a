"""Data: text sources, the tokenized cache, and the LightningDataModules that serve windows."""

from tinylm.data.datamodule import TokenDataModule
from tinylm.data.fineweb import FineWebDataModule
from tinylm.data.text import TextDataModule
from tinylm.data.tinystories import TinyStoriesDataModule
from tinylm.errors import DataError

__all__ = [
    "DataError",
    "FineWebDataModule",
    "TextDataModule",
    "TinyStoriesDataModule",
    "TokenDataModule",
]
