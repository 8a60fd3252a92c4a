"""`python scripts/attention.py` (conf/attention.yaml): the attention weights of every layer and
head of a trained model, for a prompt, drawn as one PNG of heat maps."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from tinylm.checkpoint import load_checkpoint
from tinylm.errors import PromptError
from tinylm.generation import encode_prompt, read_prompts
from tinylm.inspection import (
    attention_title,
    attention_weights,
    draw_attention,
    format_trace,
    save_figure,
    token_labels,
    trace_shapes,
)
from tinylm.inspection.attention_map import selected_maps
from tinylm.utils.device import resolve_device

log = logging.getLogger(__name__)


@dataclass
class AttentionMap:
    path: Path  # the PNG
    token_ids: list[int]  # the prompt's, T of them
    weights: torch.Tensor  # (L, H, T, T), on the CPU: what the PNG shows


def attention(cfg: DictConfig) -> AttentionMap:
    """Draw the attention of cfg.ckpt_path's model for cfg.prompt (or cfg.prompt_file's text)
    into cfg.output_file (all maps, or cfg.layer / cfg.head); print the shape trace too with
    cfg.trace."""
    prompts = read_prompts(cfg.get("prompt"), cfg.get("prompt_file"))
    if len(prompts) != 1 or prompts[0] == "":
        raise PromptError(
            'prompt is not set to a text; give one, e.g. prompt="ROMEO: But soft" (one prompt '
            "at a time), or prompt_file=<a text file>."
        )
    (prompt,) = prompts
    loaded = load_checkpoint(cfg.ckpt_path, resolve_device(cfg.device))
    model, tokenizer = loaded.model, loaded.tokenizer
    log.info(f"Checkpoint: {loaded.describe()}")
    selected_maps(model.config.n_layer, model.config.n_head, cfg.layer, cfg.head)  # checked first
    ids = encode_prompt(tokenizer, prompt, model.config.block_size)
    idx = torch.tensor([ids], device=model.tok_emb.weight.device)  # (1, T)

    if cfg.trace:
        print(format_trace(trace_shapes(model, idx), model.config))
    weights = attention_weights(model, idx)[:, 0].cpu()  # (L, 1, H, T, T) -> (L, H, T, T)
    figure = draw_attention(
        weights, token_labels(tokenizer, ids), attention_title(loaded, prompt), cfg.layer, cfg.head
    )
    path = save_figure(figure, Path(cfg.output_file))
    log.info(f"Attention map: {path}")
    return AttentionMap(path, ids, weights)
