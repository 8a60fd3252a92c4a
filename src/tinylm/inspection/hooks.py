"""Running a GPT once while forward hooks record what its modules compute.

The model is not changed and not copied: hooks are attached for one forward pass and removed.
Attention runs on the manual path for that pass, because only it computes the attention
weights as a tensor (the fused kernel never materialises them); the two paths give the same
outputs (tested in tests/model).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from tinylm.model import GPT


@contextmanager
def manual_attention(model: GPT) -> Iterator[None]:
    """Inside the block, every attention layer of `model` takes the manual path; after it, the
    path each layer had before."""
    layers = [block.attn for block in model.blocks]
    before = [layer.implementation for layer in layers]
    for layer in layers:
        layer.implementation = "manual"
    try:
        yield
    finally:
        for layer, implementation in zip(layers, before, strict=True):
            layer.implementation = implementation


@torch.inference_mode()
def record_outputs(
    model: GPT, idx: torch.Tensor, modules: dict[str, nn.Module]
) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """Run model(idx) once — eval mode, manual attention — with a forward hook on each of
    `modules` (name -> submodule). Return the logits (B, T, V) and (name, output) for every
    call of a hooked module, in the order the calls finished (a module ends after the modules
    it calls, so a block comes after its attention and MLP)."""
    recorded: list[tuple[str, torch.Tensor]] = []

    def hook_for(name: str):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            recorded.append((name, output))

        return hook

    was_training = model.training
    handles = [module.register_forward_hook(hook_for(name)) for name, module in modules.items()]
    try:
        model.eval()  # no dropout: the weights the model uses, not a noisy sample of them
        with manual_attention(model):
            logits = model(idx)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return logits, recorded
