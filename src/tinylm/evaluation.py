"""evaluate(cfg): a checkpoint's loss, perplexity and token accuracy on a split of any data config
(`python scripts/eval.py`, conf/eval.yaml).

The numbers are training's `val/loss`, `val/ppl` and `val/acc` for the same split: the same
non-overlapping windows from the start of the split, in the same batches, the same number of
them, and the loss weighted by tokens across batches.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from tinylm.checkpoint import load_checkpoint
from tinylm.data import TokenDataModule
from tinylm.data.windows import SequentialWindows
from tinylm.errors import ConfigError
from tinylm.model import GPT
from tinylm.tokenizers import saved_tokenizer_spec
from tinylm.utils.device import resolve_device

log = logging.getLogger(__name__)

SPLITS = ("train", "val")


@torch.inference_mode()
def evaluate_model(
    model: GPT,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    limit_batches: int | None,
    device: torch.device,
) -> dict:
    """Mean next-token cross-entropy (nats per token), its exp, and the fraction of tokens that
    are the model's most likely guess, over the first `limit_batches` batches (None: all)."""
    loss_sum, correct, tokens, batches_seen = 0.0, 0, 0, 0
    for x, y in itertools.islice(batches, limit_batches):
        x, y = x.to(device), y.to(device)  # (B, T) each
        logits = model(x)  # (B, T, V)
        loss_sum += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
        correct += (logits.argmax(dim=-1) == y).sum().item()
        tokens += y.numel()
        batches_seen += 1
    loss = loss_sum / tokens
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        "accuracy": correct / tokens,
        "tokens": tokens,
        "batches": batches_seen,
    }


def split_batches(datamodule: TokenDataModule, split: str) -> DataLoader:
    """The validation split's batches exactly as training validates on them; the training
    split cut into windows and batches the same way."""
    if split == "val":
        return datamodule.val_dataloader()
    windows = SequentialWindows(datamodule.cache.tokens(split), datamodule.block_size)
    return DataLoader(windows, batch_size=datamodule.batch_size)


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate cfg.ckpt_path on cfg.split of cfg.data; print the numbers, write them as JSON
    to cfg.output_file, and return them."""
    if cfg.split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, not {cfg.split!r}.")
    if cfg.limit_batches is not None and cfg.limit_batches < 1:
        raise ConfigError(
            f"limit_batches must be at least 1 (or null for the whole split), "
            f"not {cfg.limit_batches}."
        )
    device = resolve_device(cfg.device)
    loaded = load_checkpoint(cfg.ckpt_path, device)
    log.info(f"Checkpoint: {loaded.describe()}")
    # The text is tokenized with the checkpoint's tokenizer and cut into windows of its context.
    # Both are passed to the data class directly rather than through the config: a tokenizer's
    # state is data, and its strings must not be read as interpolations.
    make_datamodule = instantiate(cfg.data, _partial_=True, _convert_="all")
    datamodule: TokenDataModule = make_datamodule(
        block_size=loaded.model.config.block_size,
        tokenizer=saved_tokenizer_spec(loaded.tokenizer),
    )
    datamodule.setup("validate")
    log.info(f"Data: {datamodule.describe()}")

    metrics = evaluate_model(
        loaded.model, split_batches(datamodule, cfg.split), cfg.limit_batches, device
    )
    result = {"checkpoint": str(loaded.path), "split": cfg.split, **metrics}
    log.info(
        f"{cfg.split}: loss {metrics['loss']:.4f}, perplexity {metrics['perplexity']:.3f}, "
        f"token accuracy {metrics['accuracy']:.4f} over {metrics['tokens']:,} tokens "
        f"({metrics['batches']} batches of up to {datamodule.batch_size} windows of "
        f"{datamodule.block_size})"
    )
    if cfg.get("output_file"):
        path = Path(cfg.output_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        log.info(f"Wrote {path}")
    return result
