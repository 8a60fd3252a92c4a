"""The settings of each `data=` choice (conf/data/*.yaml), picked by data._target_."""

from __future__ import annotations

from dataclasses import dataclass

from tinylm.schema import setting

TINYSTORIES_VARIANTS = ("v1", "v2")  # the keys of tinylm.data.tinystories.VARIANT_FILES


@dataclass(kw_only=True)
class DataSettings:
    """What every data module takes."""

    _target_: str
    batch_size: int = setting(help="sequences per micro-batch of one process", low=1)
    global_batch_size: int | None = setting(
        help="sequences per optimizer step, all processes; null: trainer.accumulate_grad_batches",
        low=1,
    )
    # null in eval's config: the checkpoint's context length is given to the data when built.
    block_size: int | None = setting(help="tokens per window: model.block_size", low=1)
    tokenizer: dict | None = setting(help="the tokenizer group")
    cache_dir: str = setting(help="where tokenized caches are kept")
    seed: int = setting(help="seeds the training batches: the top-level seed", low=0)


@dataclass(kw_only=True)
class TextDataSettings(DataSettings):
    path: str = setting(help="a .txt or .jsonl file, a folder, or a glob")
    val_fraction: float = setting(
        help="the last fraction of the token stream held out for validation",
        low=0, high=1, low_open=True, high_open=True,
    )  # fmt: skip


@dataclass(kw_only=True)
class TinyStoriesDataSettings(DataSettings):
    path: str = setting(help="a hub id, or a local folder laid out like the repository")
    variant: str = setting(
        help="v1: the original stories, v2: the GPT-4-only ones", choices=TINYSTORIES_VARIANTS
    )
    revision: str = setting(help="a commit, branch or tag of the dataset repository")
    max_train_docs: int | None = setting(help="the first N training stories; null: all", low=1)
    max_val_docs: int | None = setting(help="the first N validation stories; null: all", low=1)
    hf_cache_dir: str | None = setting(help="🤗 datasets' cache; null: its default")


@dataclass(kw_only=True)
class FineWebDataSettings(DataSettings):
    path: str = setting(help="a hub id, or a local folder laid out like the repository")
    subset: str = setting(help="sample-10BT, sample-100BT, sample-350BT or a crawl name")
    revision: str = setting(help="a commit, branch or tag of the dataset repository")
    val_fraction: float = setting(
        help="the fraction of documents (by id hash) held out for validation",
        low=0, high=1, low_open=True, high_open=True,
    )  # fmt: skip
    tokens_per_epoch: int = setting(help="training tokens tokenized at a time", low=1)
    cache_max_gb: float = setting(help="parquet shards kept on disk, in GB", low=0, low_open=True)


DATA_SETTINGS = {
    "tinylm.data.TextDataModule": TextDataSettings,
    "tinylm.data.TinyStoriesDataModule": TinyStoriesDataSettings,
    "tinylm.data.FineWebDataModule": FineWebDataSettings,
}
