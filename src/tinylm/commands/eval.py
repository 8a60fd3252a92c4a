"""`python scripts/eval.py` (conf/eval.yaml): a checkpoint's loss, perplexity, token accuracy and
bits per byte on a split of any data config."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from tinylm.checkpoint import LoadedCheckpoint, load_checkpoint
from tinylm.errors import ConfigError
from tinylm.tokenizers import saved_tokenizer_spec
from tinylm.utils.device import resolve_device
from tinylm.utils.files import write_atomically

if TYPE_CHECKING:  # the data modules import Lightning, which a refused command need not load
    from tinylm.data import TokenDataModule

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate cfg.ckpt_path on cfg.split of cfg.data; print the numbers, write them as JSON
    to cfg.output_file, and return them."""
    device = resolve_device(cfg.device)
    loaded = load_checkpoint(cfg.ckpt_path, device)
    log.info(f"Checkpoint: {loaded.describe()}")
    # Imported once the checkpoint has loaded: torchmetrics (behind tinylm.evaluation) and
    # Lightning take seconds to import, which a command refused for its settings or its
    # checkpoint should not spend.
    from tinylm.evaluation import evaluate_model, split_batches

    datamodule = evaluation_data(cfg, loaded)
    datamodule.setup("validate")
    datamodule.check_split_holds_a_window(cfg.split, context_is_fixed=True)
    log.info(f"Data: {datamodule.describe()}")

    metrics = evaluate_model(
        loaded.model,
        split_batches(datamodule, cfg.split),
        cfg.limit_batches,
        device,
        loaded.tokenizer.token_byte_lengths(),
    )
    result = {"checkpoint": str(loaded.path), "split": cfg.split, **metrics}
    log.info(
        f"{cfg.split}: loss {metrics['loss']:.4f}, perplexity {metrics['perplexity']:.3f}, "
        f"token accuracy {metrics['accuracy']:.4f}, bits per byte {metrics['bpb']:.4f} over "
        f"{metrics['tokens']:,} tokens, {metrics['bytes']:,} bytes of text "
        f"({metrics['batches']} batches of up to {datamodule.batch_size} windows of "
        f"{datamodule.block_size})"
    )
    if cfg.get("output_file"):
        path = Path(cfg.output_file)
        write_atomically(path, json.dumps(result, indent=2) + "\n", folder_key="output_file")
        log.info(f"Wrote {path}")
    return result


def evaluation_data(cfg: DictConfig, loaded: LoadedCheckpoint) -> TokenDataModule:
    """The data of `data=...` on the command line, else the data the checkpoint was trained on,
    tokenized with the checkpoint's tokenizer and cut into windows of its context.

    Both are passed to the data class directly rather than through the config: a tokenizer's
    state is data, and its strings must not be read as interpolations. The tokenizer carries the
    spec it was made from, so the cache training wrote for the same text is read, not rebuilt.
    """
    recorded = loaded.data_config or {}
    if cfg.get("data") is not None:
        data = OmegaConf.to_container(cfg.data, resolve=True)
    elif recorded:
        data = dict(recorded)
        log.info(f"Data: what {loaded.path.name} was trained on ({data['_target_']})")
    else:
        raise ConfigError(
            f"{loaded.path} does not record the data it was trained on (a 🤗 transformers model "
            "or an older checkpoint); give the data on the command line, e.g. data=text "
            "data.path=<file>."
        )
    data.pop("tokenizer", None)
    data.pop("block_size", None)
    make_datamodule = instantiate(data, _partial_=True, _convert_="all")
    return make_datamodule(
        block_size=loaded.model.config.block_size,
        tokenizer=saved_tokenizer_spec(loaded.tokenizer, learned_from=recorded.get("tokenizer")),
    )
