"""The shape of a GPT: every number the model needs, and nothing about training.

A GPTConfig is all it takes to build a GPT with fresh weights, and it travels inside every
checkpoint so that the same model can be built again to load them. Names used for shapes
across tinylm.model: V = vocab_size, T <= block_size tokens, C = d_model channels,
H = n_head heads of D = C // H channels each, F = d_ff, the MLP's hidden width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tinylm.errors import ConfigError

POS_ENCODINGS = ("learned", "sinusoidal")
ATTENTION_IMPLEMENTATIONS = ("sdpa", "manual")
GELUS = ("exact", "tanh")
VOCAB_MULTIPLE = 64  # matmuls on the LM head are fastest when its width is a multiple of 64


# The settings a model's weights fix. Dropout and the attention implementation do not: a run
# may change them and keep the weights.
ARCHITECTURE = (
    "block_size", "n_layer", "n_head", "d_model", "d_ff", "bias", "pos_encoding", "gelu",
)  # fmt: skip


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 256  # longest context, in tokens
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 128
    d_ff: int = 512  # width of the MLP's hidden layer
    dropout: float = 0.0
    bias: bool = True  # biases in the Linear layers and LayerNorms
    pos_encoding: str = "learned"
    attention: str = "sdpa"
    # The MLP's GELU: exact (erf), or GPT-2's tanh approximation. Exact by default because
    # checkpoints written before this field existed were trained with it and must load unchanged.
    gelu: str = "exact"

    def __post_init__(self) -> None:
        if self.d_model % self.n_head != 0:
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_head ({self.n_head})."
            )
        if self.pos_encoding not in POS_ENCODINGS:
            raise ConfigError(
                f"model.pos_encoding must be one of {POS_ENCODINGS}, not {self.pos_encoding!r}."
            )
        if self.attention not in ATTENTION_IMPLEMENTATIONS:
            raise ConfigError(
                f"model.attention must be one of {ATTENTION_IMPLEMENTATIONS}, "
                f"not {self.attention!r}."
            )
        if self.gelu not in GELUS:
            raise ConfigError(f"model.gelu must be one of {GELUS}, not {self.gelu!r}.")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model", "d_ff"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be a positive integer.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), not {self.dropout}.")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def padded_vocab_size(self) -> int:
        """The embedding's row count: vocab_size rounded up to a multiple of 64."""
        return -(-self.vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE

    def to_dict(self) -> dict:
        return asdict(self)
