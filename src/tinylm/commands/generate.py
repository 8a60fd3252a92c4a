"""`python scripts/generate.py` (conf/generate.yaml): continue prompts with a trained model."""

from __future__ import annotations

import logging
import time
from dataclasses import fields
from pathlib import Path

import torch
from omegaconf import DictConfig

from tinylm import generation
from tinylm.checkpoint import load_checkpoint
from tinylm.generation import GenerationSettings, TextStream, encode_prompt, read_prompts
from tinylm.generation.settings import refuse_knobs_without_effect, refuse_top_k_beyond
from tinylm.utils.device import resolve_device
from tinylm.utils.files import append_jsonl
from tinylm.utils.hydra import command_line_overrides

log = logging.getLogger(__name__)


def generation_settings(cfg: DictConfig) -> GenerationSettings:
    """The settings named at the top level of conf/generate.yaml; a knob given on the command
    line that the strategy does not read is refused rather than ignored."""
    settings = GenerationSettings(
        **{field.name: cfg[field.name] for field in fields(GenerationSettings)}
    )
    given = [override.split("=", 1)[0].lstrip("+~") for override in command_line_overrides()]
    refuse_knobs_without_effect(settings, {name: cfg[name] for name in given if name in cfg})
    return settings


def generate(cfg: DictConfig) -> list[dict]:
    """Continue every prompt, print the text (streamed for a single sequence), append one JSON
    record per sequence to cfg.output_file if set; return the records."""
    settings = generation_settings(cfg)
    prompts = read_prompts(cfg.get("prompt"), cfg.get("prompt_file"))
    device = resolve_device(cfg.device)
    loaded = load_checkpoint(cfg.ckpt_path, device)
    model, tokenizer = loaded.model, loaded.tokenizer
    refuse_top_k_beyond(settings, model.config.vocab_size)
    log.info(f"Checkpoint: {loaded.describe()}")
    # Every prompt is checked before any text is generated.
    encoded = [encode_prompt(tokenizer, p, model.config.block_size) for p in prompts]
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    streams = settings.num_samples == 1 and settings.strategy != "beam"
    described_settings = {
        **settings.to_dict(),
        "seed": cfg.seed,
        "device": str(device),
        "checkpoint": str(loaded.path),
    }

    records = []
    for prompt, prompt_ids in zip(prompts, encoded, strict=True):
        stream = TextStream(tokenizer) if streams else None
        if stream is not None:
            print(prompt, end="", flush=True)
        started = time.perf_counter()
        completions = generation.generate(
            model, prompt_ids, settings, tokenizer.eos_id, generator,
            on_token=stream.write if stream is not None else None,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if stream is not None:
            stream.close()
        new_tokens = sum(len(c.tokens) for c in completions)
        for number, completion in enumerate(completions, start=1):
            text = tokenizer.decode(completion.tokens)
            if stream is None:
                print(f"--- sample {number}/{len(completions)} ---\n{prompt}{text}", flush=True)
            records.append(
                {
                    "prompt": prompt,
                    "sample": number,
                    "text": text,
                    "tokens": completion.tokens,
                    "finish_reason": completion.finish_reason,
                    "score": completion.score,
                    "settings": described_settings,
                    # The sequences of one prompt are generated together: time and speed are
                    # those of the whole batch.
                    "seconds": round(seconds, 4),
                    "tokens_per_second": round(new_tokens / seconds, 2),
                }
            )
        log.info(f"{new_tokens:,} new tokens in {seconds:.2f} s: {new_tokens / seconds:,.1f}/s")
        if cfg.get("output_file"):
            append_jsonl(Path(cfg.output_file), records[-len(completions) :], "output_file")
    if cfg.get("output_file"):
        log.info(f"Wrote {len(records)} records to {cfg.output_file}")
    return records
