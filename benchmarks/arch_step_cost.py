"""The cost of one training step of each recipe (conf/arch/) at one size, side by side.

    python benchmarks/arch_step_cost.py                      # nanoGPT's Shakespeare-char shape
    python benchmarks/arch_step_cost.py --size small --block-size 256 --vocab-size 4096 \\
        --batch-size 16 --archs gpt2 modern modern,model.mlp=swiglu
    python benchmarks/arch_step_cost.py --optimizer muon     # Muon's share of a step

A step is what training does: forward, cross-entropy, backward, gradient clipping (to 1.0) and
the optimizer's step (conf/optimizer/<--optimizer>.yaml, built as training builds it: fused
AdamW, or Muon for the blocks' matrices and AdamW for the rest), on random tokens. The models
are built from the real configs (a size from conf/model/, a recipe from conf/arch/, then
`model.key=value` switches after a comma) and timed in one process, taking turns step by step
so that a change in the machine's load falls on all of them alike. The table gives each one's
parameters, the median wall and CPU milliseconds per step, and the ratio of each median to the
first recipe's; then the CPU milliseconds from the end of backward to the end of the update
(clipping and the optimizer's step) and their median share of a step. With --threads 1 (the
default) CPU time is the time the step would take on an idle core: on a busy machine, the
steadier figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from tinylm.model import GPT, GPTConfig
from tinylm.training.optim import build_optimizer

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
SHAKESPEARE = dict(block_size=64, n_layer=4, n_head=4, d_model=128, d_ff=512)  # nanoGPT's


def build(size: str, arch: str, vocab_size: int, block_size: int | None) -> GPT:
    """A GPT of conf/model/<size>.yaml (or nanoGPT's Shakespeare shape for size `shakespeare`)
    with the switches of conf/arch/<name>.yaml and of `arch`'s `model.key=value` parts."""
    name, *switches = arch.split(",")
    settings = (
        dict(SHAKESPEARE)
        if size == "shakespeare"
        else OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{size}.yaml"))
    )
    settings.update(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "arch" / f"{name}.yaml")))
    settings.update(OmegaConf.to_container(OmegaConf.from_dotlist(switches)).get("model", {}))
    if block_size:
        settings["block_size"] = block_size
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, **settings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", nargs="+", default=["gpt2", "modern"])
    parser.add_argument("--size", default="shakespeare", help="a conf/model name, or shakespeare")
    parser.add_argument("--vocab-size", type=int, default=65)
    parser.add_argument("--block-size", type=int)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--optimizer", default="adamw", help="a conf/optimizer name")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {arch: build(args.size, arch, args.vocab_size, args.block_size) for arch in args.archs}
    optimizer_config = OmegaConf.to_container(
        OmegaConf.load(CONF_DIR / "optimizer" / f"{args.optimizer}.yaml")
    )
    optimizers = {arch: build_optimizer(model, optimizer_config) for arch, model in models.items()}
    T = next(iter(models.values())).config.block_size
    batch = torch.randint(0, args.vocab_size, (args.batch_size, T + 1))
    x, y = batch[:, :-1], batch[:, 1:]
    wall = {arch: [] for arch in models}
    cpu = {arch: [] for arch in models}
    update_cpu = {arch: [] for arch in models}  # clipping and the optimizer's step
    load = os.getloadavg()[0]
    for step in range(args.steps + 5):  # the first 5 warm up, untimed
        for arch, model in models.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            backward_cpu = time.process_time()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizers[arch].step()
            optimizers[arch].zero_grad(set_to_none=True)
            if step >= 5:
                wall[arch].append(1000 * (time.perf_counter() - start_wall))
                cpu[arch].append(1000 * (time.process_time() - start_cpu))
                update_cpu[arch].append(1000 * (time.process_time() - backward_cpu))
    print(
        f"torch {torch.__version__}, {args.threads} thread(s); size {args.size}, context {T}, "
        f"batch {args.batch_size}, vocabulary {args.vocab_size}, optimizer={args.optimizer}; "
        f"median of {args.steps} steps "
        f"each; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print(
        "| recipe | parameters | ms/step | CPU ms/step | × first (wall) | × first (CPU) "
        "| optimizer CPU ms | optimizer share |"
    )
    print("|---|---|---|---|---|---|---|---|")
    first = args.archs[0]
    for arch, model in models.items():
        w, c = statistics.median(wall[arch]), statistics.median(cpu[arch])
        w0, c0 = statistics.median(wall[first]), statistics.median(cpu[first])
        share = statistics.median(u / t for u, t in zip(update_cpu[arch], cpu[arch], strict=True))
        print(
            f"| {arch} | {model.num_parameters():,} | {w:.2f} | {c:.2f} | {w / w0:.3f} | "
            f"{c / c0:.3f} | {statistics.median(update_cpu[arch]):.2f} | {share:.1%} |"
        )


if __name__ == "__main__":
    main()
