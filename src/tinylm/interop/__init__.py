"""🤗 transformers interop: a tinylm GPT written as a folder of the 🤗 class that computes it
(classes: GPT-2, Llama, Qwen3, NanoChat), and such a folder read as a tinylm GPT.

classes, gpt2_format, llama_format and sources need nothing beyond torch; export, pretrained
and tokenizer_files import transformers, so they are imported only by what uses them (a
training run on local text never loads transformers).
"""

from __future__ import annotations

from importlib.util import find_spec

from tinylm.errors import ConfigError


def require_transformers() -> None:
    """One sentence instead of an ImportError where the `hf` extra is not installed."""
    if find_spec("transformers") is None or find_spec("safetensors") is None:
        raise ConfigError(
            "Reading or writing 🤗 transformers models needs the hf extra: "
            "pip install -e '.[hf]' (transformers and safetensors)."
        )
