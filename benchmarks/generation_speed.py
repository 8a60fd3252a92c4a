"""Tokens per second of generation, with and without the KV cache.

    python benchmarks/generation_speed.py
    python benchmarks/generation_speed.py --models small --new-tokens 256 --repeats 5

Each model is built from conf/model/<name>.yaml with GPT-2's vocabulary (50,257 tokens, the
default tokenizer; --vocab-size 65 for a character model) and random weights: speed does not
depend on the weights. Each run greedily
decodes one sequence from a one-token prompt with end-of-text ignored, so it makes exactly the
number of tokens asked for; a sequence longer than the context slides as generate.py's do.
A figure is the best of --repeats runs: on a shared machine the fastest run is the one that
was disturbed least.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from tinylm.generation import GenerationSettings, generate
from tinylm.model import GPT, GPTConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
GPT2_VOCAB = 50_257


def build_model(name: str, vocab_size: int, device: torch.device) -> GPT:
    shape = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml"))
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, **shape)).to(device).eval()


def tokens_per_second(model: GPT, new_tokens: int, use_cache: bool, repeats: int) -> float:
    settings = GenerationSettings(
        strategy="greedy", max_new_tokens=new_tokens, stop_at_eos=False, use_cache=use_cache
    )
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        (completion,) = generate(model, [0], settings, eos_id=0)
        best = min(best, time.perf_counter() - started)
        assert len(completion.tokens) == new_tokens
    return new_tokens / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["small", "medium"])
    parser.add_argument("--new-tokens", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--vocab-size", type=int, default=GPT2_VOCAB)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__} on {device} ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads); vocabulary {args.vocab_size:,}; "
        f"best of {args.repeats} runs\n"
    )
    print("| model | context | new tokens | no cache (tokens/s) | KV cache (tokens/s) | speed-up |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        model = build_model(name, args.vocab_size, device)
        generate(model, [0], GenerationSettings(strategy="greedy", max_new_tokens=8), 0)  # warm-up
        for new_tokens in args.new_tokens:
            uncached = tokens_per_second(model, new_tokens, use_cache=False, repeats=args.repeats)
            cached = tokens_per_second(model, new_tokens, use_cache=True, repeats=args.repeats)
            print(
                f"| {name} | {model.config.block_size} | {new_tokens} | {uncached:,.0f} | "
                f"{cached:,.0f} | {cached / uncached:.1f}× |",
                flush=True,
            )


if __name__ == "__main__":
    main()
