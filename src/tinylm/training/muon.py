"""optimizer=muon: torch.optim.Muon for the blocks' hidden matrices, AdamW for everything else,
as one optimizer that Lightning steps, schedules, clips and checkpoints like any other.

Muon orthogonalises each matrix's momentum (Newton–Schulz iterations) so that every direction
of the matrix moves by about the same amount; that only means something for a 2-D weight that
maps features to features. The embedding (a lookup table), the LM head, norms' gains, biases
and scalars keep AdamW (Keller Jordan's Muon post; modded-nanogpt and nanochat do the same).
"""

from __future__ import annotations

import math

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


class BatchedMuon(torch.optim.Muon):
    """torch.optim.Muon's update, bit for bit, in fewer and larger operations.

    torch's Muon orthogonalises one matrix at a time; at nanoGPT's Shakespeare size (16 small
    matrices, 768 tokens a step) that took a quarter of a training step on a CPU. This step
    stacks the matrices of one shape and runs the Newton–Schulz iterations as batched matmuls
    (the same bf16 arithmetic per matrix: bmm gives mm's bits, tested against torch's Muon),
    updates the momentum with one foreach call per group, and skips the weight-decay multiply
    when the decay is zero (a multiply by one). What is left is the iterations' arithmetic:
    about 2.3 GFLOP per step at that size, run at the CPU's bf16 peak (docs/recipes.md).
    Same constructor, settings and state (`momentum_buffer`) as torch's, so checkpoints of
    either load in the other.
    """

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            buffers = [self.momentum_buffer(p) for p in params]
            momentum, lr = group["momentum"], float(group["lr"])
            torch._foreach_lerp_(buffers, grads, 1 - momentum)
            updates = (
                torch._foreach_lerp(grads, buffers, momentum) if group["nesterov"] else buffers
            )
            if group["weight_decay"]:
                torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
            for shape, indices in indices_by_shape(params).items():
                orthogonal = orthogonalise(
                    torch.stack([updates[i] for i in indices]),  # (n, rows, cols)
                    group["ns_coefficients"],
                    group["ns_steps"],
                    group["eps"],
                )
                step_size = lr * lr_ratio(group["adjust_lr_fn"], shape)
                # In fp32 first, all at once: adding a bf16 matrix to an fp32 one converts it
                # element by element, slower than one conversion (the same numbers either way).
                torch._foreach_add_(
                    [params[i] for i in indices], list(orthogonal.float()), alpha=-step_size
                )
        return loss

    def momentum_buffer(self, param: torch.Tensor) -> torch.Tensor:
        state = self.state[param]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state["momentum_buffer"]


def indices_by_shape(params: list[torch.Tensor]) -> dict[torch.Size, list[int]]:
    groups: dict[torch.Size, list[int]] = {}
    for i, param in enumerate(params):
        groups.setdefault(param.shape, []).append(i)
    return groups


def orthogonalise(
    updates: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> torch.Tensor:
    """torch.optim.Muon's Newton–Schulz iterations (quintic, in bf16) on a stack of same-shaped
    matrices (n, rows, cols) at once: each comes out close to the nearest orthogonal matrix."""
    a, b, c = coefficients
    x = updates.bfloat16()
    tall = x.size(1) > x.size(2)
    if tall:  # iterate on the wide side: the Gram matrix x·xᵀ is the smaller square
        x = x.mT
    # Each matrix over its own Frobenius norm, computed one by one as torch's Muon does (its
    # spectral norm is then at most 1, where the iterations converge).
    norms = torch.stack([matrix.norm() for matrix in x]).clamp(min=eps)  # (n,)
    x = x / norms[:, None, None]
    for _ in range(steps):
        gram = x @ x.mT  # (n, r, r), r = min(rows, cols)
        polynomial = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)  # b·G + c·G²
        x = torch.baddbmm(x, polynomial, x, beta=a)  # a·x + (b·G + c·G²)·x
    return x.mT if tall else x


def lr_ratio(adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """How torch's Muon scales the learning rate to a matrix's shape (rows A, columns B):
    Keller Jordan's √max(1, A/B) ("original", the default) or Moonshot's 0.2·√max(A, B)."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))


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
    muon = BatchedMuon(
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
