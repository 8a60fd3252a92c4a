"""A tinylm model written as a 🤗 transformers folder of the class that computes it exactly
(interop.classes: GPT2LMHeadModel, LlamaForCausalLM, Qwen3ForCausalLM or NanoChatForCausalLM):
config.json, model.safetensors (no pickle), generation_config.json and the tokenizer files, which
AutoModelForCausalLM / AutoTokenizer .from_pretrained, lm-evaluation-harness and serving stacks
read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from tinylm.errors import ConfigError
from tinylm.interop.classes import matching_model_type
from tinylm.interop.gpt2_format import gpt2_config_values, to_gpt2_weights
from tinylm.interop.llama_format import llama_config_values, to_llama_weights
from tinylm.interop.tokenizer_files import save_tokenizer_files
from tinylm.model import GPT
from tinylm.tokenizers import Tokenizer

# The reloaded model must give tinylm's logits within this share of the largest logit (or of 1):
# fp32 sums taken in another order differ in their last digits, more so for large logits.
LOGIT_TOLERANCE = 1e-4
CHECK_TOKENS = 64


def export_to_transformers(model: GPT, tokenizer: Tokenizer, output_dir: Path) -> tuple[str, float]:
    """Write `model` (put in eval mode) and `tokenizer` into the new folder `output_dir`; return
    the 🤗 class it was written as and the largest difference between tinylm's logits and those
    of the folder read back by transformers.

    The folder is written under a temporary name beside it and renamed once complete and
    checked, so a failure leaves no half-written folder under the real name.
    """
    model_type = matching_model_type(model.config)  # before anything is written
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ConfigError(
            f"output_dir {output_dir} already exists and is not an empty folder; export into a "
            "new folder (nothing was written)."
        )
    staging = output_dir.parent / f".{output_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)  # left by a crashed export of a process of this id
    staging.mkdir(parents=True)
    model.eval()
    try:
        hf_model = transformers_model(model, tokenizer.eos_id, model_type)
        hf_model.save_pretrained(staging)
        save_tokenizer_files(tokenizer, staging, model.config.block_size)
        difference, largest = largest_logit_difference(model, staging)
        if difference > LOGIT_TOLERANCE * max(1.0, largest):
            raise RuntimeError(
                f"The exported model's logits differ from tinylm's by {difference:.2e}; "
                "this is a bug in tinylm's export."
            )
        staging.replace(output_dir)  # an empty folder under the name is replaced
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return type(hf_model).__name__, difference


def transformers_model(model: GPT, eos_id: int, model_type: str) -> torch.nn.Module:
    """The 🤗 model of `model_type` holding `model`'s weights (fp32, on the CPU)."""
    if model_type == "gpt2":
        hf_model = GPT2LMHeadModel(GPT2Config(**gpt2_config_values(model.config, eos_id)))
        hf_model.transformer.load_state_dict(to_gpt2_weights(model))  # the LM head is tied to it
        return hf_model
    values = llama_config_values(model.config, eos_id, model_type)
    config = AutoConfig.for_model(model_type, **values)
    hf_model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    hf_model.load_state_dict(to_llama_weights(model, model_type))  # strict: every tensor named
    return hf_model


@torch.no_grad()
def largest_logit_difference(model: GPT, folder: Path) -> tuple[float, float]:
    """Max |logit difference| between `model` (in eval mode) and the 🤗 model in `folder` (fp32,
    on the CPU) over a fixed sequence of tokens, and max |logit| of `model` there."""
    reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    generator = torch.Generator().manual_seed(0)
    length = min(CHECK_TOKENS, model.config.block_size)
    ids = torch.randint(0, model.config.vocab_size, (1, length), generator=generator)  # (1, T)
    reference = model(ids.to(model.tok_emb.weight.device)).float().cpu()  # (1, T, V)
    difference = (reloaded(ids).logits - reference).abs().max().item()
    return difference, reference.abs().max().item()
