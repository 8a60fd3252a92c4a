"""Models for generation tests: the session's trained tiny checkpoint, and small random GPTs."""

from __future__ import annotations

from pathlib import Path

import torch

from tinylm.checkpoint import LoadedCheckpoint, load_checkpoint
from tinylm.generation import GenerationSettings, generate
from tinylm.model import GPT, GPTConfig


def trained(trained_run: Path) -> LoadedCheckpoint:
    return load_checkpoint(trained_run / "run" / "checkpoints" / "last.ckpt")


def random_gpt(seed: int = 0, **overrides) -> GPT:
    """A small GPT whose logits are far from uniform (a larger embedding scale), so that the
    most likely token is never a near-tie that float rounding could flip."""
    values = dict(vocab_size=20, block_size=16, n_layer=2, n_head=2, d_model=16, d_ff=32)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**{**values, **overrides})).eval()
    with torch.no_grad():
        model.tok_emb.weight.mul_(10)
    return model


def tokens_of(model: GPT, prompt_ids: list[int], eos_id: int = 0, seed: int = 0, **settings):
    """The token lists generate() returns, with a generator seeded by `seed`."""
    generator = torch.Generator().manual_seed(seed)
    completions = generate(model, prompt_ids, GenerationSettings(**settings), eos_id, generator)
    return [c.tokens for c in completions]
