"""Data: text sources, the tokenized cache, and the LightningDataModules that serve windows.

Each data module is imported when first named (`tinylm.data.TextDataModule`, or a config's
`_target_`), so a run pays only for the libraries of the source it reads.
"""

from tinylm.utils.lazy import lazy_exports

__all__ = [
    "DataError",
    "FineWebDataModule",
    "TextDataModule",
    "TinyStoriesDataModule",
    "TokenDataModule",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "DataError": "tinylm.errors",
        "FineWebDataModule": "tinylm.data.fineweb",
        "TextDataModule": "tinylm.data.text",
        "TinyStoriesDataModule": "tinylm.data.tinystories",
        "TokenDataModule": "tinylm.data.datamodule",
    },
)
