"""A 🤗 transformers model as a tinylm GPT and tokenizer: a GPT-2, Llama, Qwen3 or NanoChat (the
classes tinylm exports to), from a folder that save_pretrained wrote, or from the 🤗 Hub by its id
(openai-community/gpt2), downloaded and cached by huggingface_hub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from tinylm.errors import CheckpointError
from tinylm.interop.classes import CLASSES
from tinylm.interop.gpt2_format import from_gpt2_weights, gpt_config_from_gpt2
from tinylm.interop.llama_format import from_llama_weights, gpt_config_from_llama
from tinylm.interop.tokenizer_files import tinylm_tokenizer
from tinylm.model import GPT
from tinylm.tokenizers import Tokenizer

Loaded = TypeVar("Loaded")


def load_transformers_model(source: str) -> tuple[GPT, Tokenizer]:
    """The GPT (fp32, on the CPU, train mode) and tokenizer of a 🤗 folder or hub id."""
    config = fetch(AutoConfig.from_pretrained, source)
    model_type = config.model_type
    if model_type not in CLASSES:
        raise CheckpointError(
            f"{source} is a {model_type} model; tinylm reads {', '.join(CLASSES)} models "
            "(model_type) only."
        )
    is_gpt2 = model_type == "gpt2"
    # The config first: a model tinylm cannot represent is refused before its weights load.
    gpt_config = (gpt_config_from_gpt2 if is_gpt2 else gpt_config_from_llama)(config, source)
    hf_model = fetch(AutoModelForCausalLM.from_pretrained, source, config=config,
                     dtype=torch.float32)  # fmt: skip
    if is_gpt2:
        state = from_gpt2_weights(hf_model.transformer.state_dict(), gpt_config)
    else:
        state = from_llama_weights(hf_model.state_dict(), gpt_config, model_type)
    model = GPT(gpt_config)
    model.load_state_dict(state)
    tokenizer = tinylm_tokenizer(fetch(AutoTokenizer.from_pretrained, source), source)
    return model, tokenizer


def fetch(load: Callable[..., Loaded], source: str, **kwargs) -> Loaded:
    """`load(source)`, its failure told as one sentence: a folder lacks files, or the Hub (or the
    network to it) does not have the model."""
    try:
        return load(source, **kwargs)
    except OSError as error:
        reason = str(error).strip().splitlines()[0].rstrip(".")
        if Path(source).expanduser().is_dir():
            raise CheckpointError(
                f"{source} is not a complete 🤗 transformers model folder ({reason})."
            ) from None
        raise CheckpointError(
            f"Could not load {source} from the 🤗 Hub ({reason}); check the name and the "
            "connection (HF_HUB_OFFLINE=1 forbids downloads), or give a tinylm checkpoint, a run "
            "folder or a folder written by save_pretrained."
        ) from None
