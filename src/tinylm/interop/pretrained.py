"""A 🤗 transformers GPT-2 as a tinylm GPT and tokenizer: from a folder that save_pretrained wrote,
or from the 🤗 Hub by its id (openai-community/gpt2), downloaded and cached by huggingface_hub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from transformers import AutoConfig, AutoTokenizer, GPT2LMHeadModel

from tinylm.errors import CheckpointError
from tinylm.interop.gpt2_format import from_gpt2_weights, gpt_config_from_gpt2
from tinylm.interop.tokenizer_files import tinylm_tokenizer
from tinylm.model import GPT
from tinylm.tokenizers import Tokenizer

Loaded = TypeVar("Loaded")


def load_transformers_model(source: str) -> tuple[GPT, Tokenizer]:
    """The GPT (fp32, on the CPU, train mode) and tokenizer of a 🤗 GPT-2 folder or hub id."""
    config = fetch(AutoConfig.from_pretrained, source)
    if config.model_type != "gpt2":
        raise CheckpointError(
            f"{source} is a {config.model_type} model; tinylm reads GPT-2 models (model_type "
            "gpt2) only."
        )
    gpt_config = gpt_config_from_gpt2(config, source)
    hf_model = fetch(GPT2LMHeadModel.from_pretrained, source, config=config, dtype=torch.float32)
    model = GPT(gpt_config)
    model.load_state_dict(from_gpt2_weights(hf_model.transformer.state_dict(), gpt_config))
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
