"""Which 🤗 transformers class computes a tinylm model exactly, from its switches.

Each class computes one recipe: a model is written as the class whose every required switch it
has (the other switches are free: biases, grouped-query heads, the rotary base, the norms' eps,
a tied or untied head where the class has both). A model no class computes is refused in one
sentence that names the switches the nearest class needs.
"""

from __future__ import annotations

from tinylm.errors import ConfigError
from tinylm.model import GPTConfig

# model_type -> (class name, {switch: the values the class computes}). "grouped" is whether
# there are fewer key/value heads than query heads.
CLASSES = {
    "gpt2": ("GPT2LMHeadModel", {
        "pos_encoding": ("learned", "sinusoidal"), "norm": ("layernorm",), "mlp": ("gelu",),
        "qk_norm": (False,), "embed_norm": (False,), "tie_embeddings": (True,),
        "logit_softcap": (None,), "grouped": (False,),
    }),
    "llama": ("LlamaForCausalLM", {
        "pos_encoding": ("rope",), "norm": ("rmsnorm",), "mlp": ("swiglu",), "qk_norm": (False,),
        "embed_norm": (False,), "logit_softcap": (None,),
    }),
    "qwen3": ("Qwen3ForCausalLM", {
        "pos_encoding": ("rope",), "norm": ("rmsnorm",), "mlp": ("swiglu",), "qk_norm": (True,),
        "embed_norm": (False,), "logit_softcap": (None,), "bias": (False,),
    }),
    "nanochat": ("NanoChatForCausalLM", {
        "pos_encoding": ("rope",), "norm": ("rmsnorm",), "norm_weight": (False,),
        "mlp": ("relu2",), "qk_norm": (True,), "embed_norm": (True,), "bias": (False,),
    }),
}  # fmt: skip


def needed_settings(config: GPTConfig, model_type: str) -> list[str]:
    """The settings `config` would need for the class of `model_type`, as `model.key=value`."""
    _, required = CLASSES[model_type]
    needed = []
    for switch, values in required.items():
        if switch == "grouped":
            if config.kv_heads != config.n_head:
                needed.append("model.n_kv_head=null")
        elif getattr(config, switch) not in values:
            value = values[0]
            shown = "null" if value is None else str(value).lower()
            needed.append(f"model.{switch}={shown}")
    return needed


def matching_model_type(config: GPTConfig) -> str:
    """The model_type of the class that computes `config` exactly, or a ConfigError naming the
    switches the nearest class needs."""
    needed = {model_type: needed_settings(config, model_type) for model_type in CLASSES}
    nearest = min(needed, key=lambda model_type: len(needed[model_type]))
    if needed[nearest]:
        raise ConfigError(
            f"No 🤗 transformers class computes this model exactly; the nearest, "
            f"{CLASSES[nearest][0]}, needs {' and '.join(needed[nearest])} (nothing was written)."
        )
    return nearest
