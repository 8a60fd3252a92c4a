"""optimizer=muon: torch.optim.Muon for the blocks' hidden matrices, AdamW for everything else,
as one optimizer that Lightning steps, schedules, clips and checkpoints like any other.

Muon orthogonalises each matrix's momentum (Newton–Schulz iterations) so that every direction
of the matrix moves by about the same amount; that only means something for a 2-D weight that
maps features to features. The embedding (a lookup table), the LM head, norms' gains, biases
and scalars keep AdamW (Keller Jordan's Muon post; modded-nanogpt and nanochat do the same).
"""

from __future__ import annotations

import torch
from torch import nn

from tinylm.errors import ConfigError

# Lightning's strategies that shard parameters, as hardware.strategy names them (a name, or the
# _target_ of hardware=fsdp): each device holds flat 1-D slices of the matrices, which Muon
# cannot orthogonalise.
SHARDING_STRATEGIES = ("fsdp", "deepspeed", "model_parallel", "modelparallel")


def check_muon_is_available() -> None:
    if not hasattr(torch.optim, "Muon"):
        raise ConfigError(
            f"optimizer=muon needs torch.optim.Muon (torch 2.9 or later) and this torch is "
            f"{torch.__version__}: upgrade torch or choose optimizer=adamw."
        )


def check_muon_fits_hardware(hardware: dict) -> None:
    """Muon with sharded matrices (hardware=fsdp) is one sentence, before anything is built."""
    strategy = hardware.get("strategy") or ""
    name = strategy.get("_target_", "") if isinstance(strategy, dict) else str(strategy)
    if any(sharding in name.lower() for sharding in SHARDING_STRATEGIES):
        raise ConfigError(
            f"optimizer=muon cannot run with a sharding strategy ({name}, as hardware=fsdp "
            "uses): it splits each matrix into flat slices that Muon cannot orthogonalise; use "
            "hardware=ddp or one device, or optimizer=adamw."
        )


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The weights of the Linear layers inside the transformer blocks (attention's qkv and
    output projections, the MLP's): the matrices Muon is for."""
    return [
        module.weight
        for block in model.blocks
        for module in block.modules()
        if isinstance(module, nn.Linear) and module.weight.requires_grad
    ]


class MuonWithAdamW(torch.optim.Optimizer):
    """Two torch optimizers stepped as one.

    Its param_groups are the Muon groups followed by the AdamW groups (the same dicts, so the
    learning-rate scheduler and gradient clipping reach both), and all three optimizers share
    one `state` dict, keyed by parameter: the state_dict that torch packs for this optimizer
    holds Muon's momentum buffers and AdamW's moments, and loading it restores both exactly.
    """

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer) -> None:
        self.muon, self.adamw = muon, adamw
        self.muon_group_count = len(muon.param_groups)
        super().__init__(muon.param_groups + adamw.param_groups, defaults={})
        self.share_groups_and_state()

    def share_groups_and_state(self) -> None:
        """Point the inner optimizers at this one's groups and state (after __init__, and after
        load_state_dict, which replaces both with new objects)."""
        self.muon.param_groups = self.param_groups[: self.muon_group_count]
        self.adamw.param_groups = self.param_groups[self.muon_group_count :]
        self.muon.state = self.adamw.state = self.state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.share_groups_and_state()

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:  # forward and backward, once for both optimizers
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss


def build_muon_with_adamw(
    model: nn.Module, config: dict, adamw_groups: list[dict], fused: bool
) -> MuonWithAdamW:
    """Muon on the blocks' hidden matrices; AdamW, with `adamw_groups` (the model's parameter
    groups with weight decay on matrices only), on every other parameter."""
    matrices = hidden_matrices(model)
    muon_ids = {id(p) for p in matrices}
    rest = []
    for group in adamw_groups:
        params = [p for p in group["params"] if id(p) not in muon_ids]
        if params:
            rest.append({**group, "params": params})
    muon = torch.optim.Muon(
        matrices,
        lr=config["lr"],
        weight_decay=config["weight_decay"],
        momentum=config["momentum"],
        nesterov=config["nesterov"],
        ns_steps=config["ns_steps"],
        adjust_lr_fn=config["adjust_lr_fn"],
    )
    adamw = torch.optim.AdamW(
        rest,
        lr=config["adamw_lr"],
        betas=tuple(config["adamw_betas"]),
        eps=config["adamw_eps"],
        fused=fused or None,
    )
    return MuonWithAdamW(muon, adamw)
