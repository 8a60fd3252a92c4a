"""A 🤗 transformers model as a tinylm GPT and tokenizer: a GPT-2, Llama, Qwen3 or NanoChat (the
classes tinylm exports to), from a folder that save_pretrained wrote, or from the 🤗 Hub by its id
(openai-community/gpt2), downloaded and cached by huggingface_hub."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig

from tinylm.errors import CheckpointError
from tinylm.interop.classes import CLASSES
from tinylm.interop.gpt2_format import from_gpt2_weights, gpt_config_from_gpt2
from tinylm.interop.llama_format import from_llama_weights, gpt_config_from_llama
from tinylm.interop.tokenizer_files import tinylm_tokenizer
from tinylm.model import GPT
from tinylm.tokenizers import Tokenizer

Loaded = TypeVar("Loaded")
SAFETENSORS_WEIGHTS = "model.safetensors"
# What AutoTokenizer reads a GPT-2 tokenizer from: 🤗 tokenizers' file, or GPT-2's own two.
TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"))
TOKEN_EMBEDDINGS = ("wte.weight", "embed_tokens.weight")  # GPT-2's name, Llama's and its kin's


def load_transformers_model(source: str) -> tuple[GPT, Tokenizer]:
    """The GPT (fp32, on the CPU, train mode) and tokenizer of a 🤗 folder or hub id.

    A local folder's files are checked before they are read: its weights have the sizes its
    config.json gives, and its tokenizer files are there."""
    config = fetch(AutoConfig.from_pretrained, source)
    model_type = config.model_type
    if model_type not in CLASSES:
        raise CheckpointError(
            f"{source} is a {model_type} model; tinylm reads {', '.join(CLASSES)} models "
            "(model_type) only."
        )
    folder = Path(source).expanduser()
    if folder.is_dir():
        check_weights_fit_config(folder, config)
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
    if folder.is_dir():
        check_tokenizer_files(folder)
    tokenizer = tinylm_tokenizer(fetch(AutoTokenizer.from_pretrained, source), source)
    return model, tokenizer


def check_tokenizer_files(folder: Path) -> None:
    """A folder without its tokenizer would load as a stand-in tokenizer of one token."""
    if not any(all((folder / name).is_file() for name in files) for files in TOKENIZER_FILES):
        raise CheckpointError(
            f"{folder} has no tokenizer files (tokenizer.json, or vocab.json and merges.txt); "
            "copy in those of the tokenizer the model was trained with."
        )


def check_weights_fit_config(folder: Path, config: PretrainedConfig) -> None:
    """model.safetensors' token embedding against config.json's sizes, from the file's header
    alone (transformers would load the weights first and print a report of every mismatch)."""
    path = folder / SAFETENSORS_WEIGHTS
    if not path.is_file():
        return  # pytorch_model.bin: transformers loads it safely or refuses it (fetch)
    try:
        with safe_open(str(path), framework="pt") as weights:
            names = weights.keys()  # safe_open is not iterable itself
            shapes = {name: weights.get_slice(name).get_shape() for name in names}
    except SafetensorError as error:
        raise CheckpointError(
            f"{path} cannot be read ({error}): it is damaged or was cut short; download or "
            "export it again."
        ) from None
    embedding = next((n for n in shapes if n.endswith(TOKEN_EMBEDDINGS)), None)
    expected = [config.vocab_size, config.hidden_size]
    if embedding is not None and list(shapes[embedding]) != expected:
        raise CheckpointError(
            f"{path} holds {embedding} of shape {list(shapes[embedding])} where "
            f"{folder / 'config.json'} (vocab_size {config.vocab_size}, hidden size "
            f"{config.hidden_size}) needs {expected}: the config and the weights are of "
            "different models; put the config.json that was saved with these weights beside them."
        )


def fetch(load: Callable[..., Loaded], source: str, **kwargs) -> Loaded:
    """`load(source)`, its failure told as one sentence: a folder lacks files or holds weights
    that are not safe to load, or the Hub (or the network to it) does not have the model."""
    try:
        return load(source, **kwargs)
    except pickle.UnpicklingError as error:
        # torch.load(weights_only=True) refused a pickle that asks for code to run.
        blocked = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f" (it calls {blocked.group(1)})" if blocked else ""
        raise CheckpointError(
            f"{source}'s pytorch_model.bin asks to run code when it is loaded{what}, which "
            "tinylm never does; use a model whose weights are in model.safetensors, or one you "
            "trust converted to it."
        ) from None
    except SafetensorError as error:
        raise CheckpointError(
            f"{source}'s model.safetensors cannot be read ({error}): it is damaged or was cut "
            "short; download or export it again."
        ) from None
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
