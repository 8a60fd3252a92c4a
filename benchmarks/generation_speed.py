"""Tokens per second of generation, with and without the KV cache.

    python benchmarks/generation_speed.py
    python benchmarks/generation_speed.py --models small --new-tokens 256 --repeats 5
    # the target of docs/performance.md: the medium shape with context 256 and a 4,096-token
    # vocabulary, sampling with top-k 200 (generate.py's default), 512 new tokens
    python benchmarks/generation_speed.py --models medium --block-size 256 --vocab-size 4096 \
        --strategy sample --top-k 200 --new-tokens 512 --no-uncached

Each model is built from conf/model/<name>.yaml (its context changed by --block-size) with
GPT-2's vocabulary (50,257 tokens, the default tokenizer; --vocab-size 65 for a character model)
and random weights: speed does not depend on the weights. Each run decodes one sequence from a
one-token prompt with end-of-text ignored, so it makes exactly the number of tokens asked for
(greedily, or sampled with --strategy sample); a sequence longer than the context slides as
generate.py's do. A figure is the best of --repeats runs: on a shared machine the fastest run is
the one that was disturbed least. Beside it, the rate by the process's CPU time: generation
decodes on one CPU thread, so this is the rate of an idle core, steadier on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch
from omegaconf import OmegaConf

from tinylm.generation import GenerationSettings, generate
from tinylm.model import GPT, GPTConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
GPT2_VOCAB = 50_257


def build_model(name: str, vocab_size: int, block_size: int | None, device: torch.device) -> GPT:
    shape = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml"))
    if block_size:
        shape["block_size"] = block_size
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, **shape)).to(device).eval()


def tokens_per_second(
    model: GPT, settings: GenerationSettings, repeats: int
) -> tuple[float, float]:
    """The best rate of `repeats` runs by wall-clock time, and by the process's CPU time."""
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        generator = torch.Generator(model.tok_emb.weight.device).manual_seed(0)
        wall, cpu = time.perf_counter(), time.process_time()
        (completion,) = generate(model, [0], settings, eos_id=0, generator=generator)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        assert len(completion.tokens) == settings.max_new_tokens
    return settings.max_new_tokens / best_wall, settings.max_new_tokens / best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["small", "medium"])
    parser.add_argument("--new-tokens", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--vocab-size", type=int, default=GPT2_VOCAB)
    parser.add_argument("--block-size", type=int, help="context (default: the model config's)")
    parser.add_argument("--strategy", choices=["greedy", "sample"], default="greedy")
    parser.add_argument("--top-k", type=int, help="with --strategy sample")
    parser.add_argument("--temperature", type=float, default=0.8, help="with --strategy sample")
    parser.add_argument("--no-uncached", action="store_true", help="time the KV cache only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    top_k = f", top-k {args.top_k}" if args.top_k else ""
    strategy = f"sampling (T={args.temperature}{top_k})" if args.strategy == "sample" else "greedy"
    print(
        f"torch {torch.__version__} on {device} ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, decoding on 1); vocabulary {args.vocab_size:,}; "
        f"{strategy}; best of {args.repeats} runs; load average {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| model | context | new tokens | no cache (tokens/s) | KV cache (tokens/s) "
        "| KV cache, by CPU time (tokens/s) |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.models:
        model = build_model(name, args.vocab_size, args.block_size, device)
        generate(model, [0], GenerationSettings(strategy="greedy", max_new_tokens=8), 0)  # warm-up
        for new_tokens in args.new_tokens:
            settings = GenerationSettings(
                strategy=args.strategy, max_new_tokens=new_tokens, stop_at_eos=False,
                temperature=args.temperature, top_k=args.top_k,
            )  # fmt: skip
            uncached = "–"
            if not args.no_uncached:
                rate, _ = tokens_per_second(model, replace(settings, use_cache=False), args.repeats)
                uncached = f"{rate:,.0f}"
            cached, cached_cpu = tokens_per_second(model, settings, args.repeats)
            print(
                f"| {name} | {model.config.block_size} | {new_tokens} | {uncached} | "
                f"{cached:,.0f} | {cached_cpu:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
