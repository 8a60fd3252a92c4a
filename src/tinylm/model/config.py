"""The shape of a GPT: every number and switch the model needs, and nothing about training.

A GPTConfig is all it takes to build a GPT with fresh weights, and it travels inside every
checkpoint so that the same model can be built again to load them. Names used for shapes
across tinylm.model: V = vocab_size, T <= block_size tokens, C = d_model channels,
H = n_head query heads of D = C // H channels each, K = n_kv_head key/value heads,
F = d_ff, the MLP's hidden width.

The defaults are GPT-2's recipe (learned positions, LayerNorm, GELU, tied head): a checkpoint
written before a switch existed lacks it and loads as the model it was trained as. conf/arch/
holds the recipes (gpt2, modern) as sets of these switches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tinylm.errors import ConfigError

POS_ENCODINGS = ("learned", "sinusoidal", "rope")
NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu", "relu2")
ATTENTION_IMPLEMENTATIONS = ("sdpa", "manual")
GELUS = ("exact", "tanh")
VOCAB_MULTIPLE = 64  # matmuls on the LM head are fastest when its width is a multiple of 64

# The settings a model's weights fix. Dropout, the attention implementation and the
# initialisation do not: a run may change them and keep the weights.
ARCHITECTURE = (
    "block_size", "n_layer", "n_head", "n_kv_head", "d_model", "d_ff", "bias", "pos_encoding",
    "rope_base", "norm", "norm_weight", "norm_eps", "mlp", "gelu", "qk_norm", "embed_norm",
    "tie_embeddings", "logit_softcap",
)  # fmt: skip

# The switches a conf/arch/*.yaml recipe sets: every one, so that recipes compose with any size
# (conf/model/*.yaml) and `arch=` is the whole recipe.
RECIPE_SWITCHES = (
    "bias", "pos_encoding", "rope_base", "norm", "norm_weight", "norm_eps", "mlp", "qk_norm",
    "embed_norm", "tie_embeddings", "logit_softcap", "zero_init_proj",
)  # fmt: skip


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 256  # longest context, in tokens
    n_layer: int = 2
    n_head: int = 4
    # Key/value heads: each serves n_head / n_kv_head query heads (grouped-query attention);
    # None means one per query head, plain multi-head attention.
    n_kv_head: int | None = None
    d_model: int = 128
    d_ff: int = 512  # width of the MLP's hidden layer
    dropout: float = 0.0
    bias: bool = True  # biases in the Linear layers and LayerNorms
    pos_encoding: str = "learned"  # learned | sinusoidal (added to the embeddings) | rope
    rope_base: float = 10000.0  # rotary: the slowest pair turns base^(-(D-2)/D) per position
    norm: str = "layernorm"  # layernorm | rmsnorm
    norm_weight: bool = True  # a learned gain per channel in every norm
    norm_eps: float = 1e-5
    mlp: str = "gelu"  # gelu | swiglu | relu2
    qk_norm: bool = False  # normalise each head's queries and keys before their dot product
    embed_norm: bool = False  # a norm right after the token embedding
    tie_embeddings: bool = True  # the LM head reuses the token embedding
    logit_softcap: float | None = None  # logits = cap·tanh(logits / cap); None: off
    zero_init_proj: bool = False  # residual projections start at zero (blocks start as identity)
    attention: str = "sdpa"
    # The MLP's GELU: exact (erf), or GPT-2's tanh approximation. Exact by default because
    # checkpoints written before this field existed were trained with it and must load unchanged.
    gelu: str = "exact"

    def __post_init__(self) -> None:
        for name, choices in (
            ("pos_encoding", POS_ENCODINGS),
            ("norm", NORMS),
            ("mlp", MLPS),
            ("attention", ATTENTION_IMPLEMENTATIONS),
            ("gelu", GELUS),
        ):
            if getattr(self, name) not in choices:
                raise ConfigError(
                    f"model.{name} must be one of {choices}, not {getattr(self, name)!r}."
                )
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model", "d_ff"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be a positive integer.")
        if self.d_model % self.n_head != 0:
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_head ({self.n_head})."
            )
        if self.n_kv_head is not None and (self.n_kv_head < 1 or self.n_head % self.n_kv_head != 0):
            raise ConfigError(
                f"model.n_kv_head ({self.n_kv_head}) must divide model.n_head ({self.n_head}): "
                "each key/value head serves the same number of query heads."
            )
        if self.pos_encoding == "rope" and self.head_dim % 2 != 0:
            raise ConfigError(
                f"Rotary positions turn pairs of channels, so the head width d_model / n_head "
                f"must be even, not {self.head_dim}; change model.d_model or model.n_head."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), not {self.dropout}.")
        for name in ("rope_base", "norm_eps", "logit_softcap"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"model.{name} must be positive, not {value}.")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def kv_heads(self) -> int:
        """K: the number of key/value heads."""
        return self.n_kv_head or self.n_head

    @property
    def padded_vocab_size(self) -> int:
        """The embedding's row count: vocab_size rounded up to a multiple of 64."""
        return -(-self.vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE

    def to_dict(self) -> dict:
        return asdict(self)
