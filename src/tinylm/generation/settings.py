"""How to generate: the strategy and its knobs, checked once so every strategy can trust them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tinylm.errors import ConfigError

STRATEGIES = ("greedy", "sample", "beam")


@dataclass(frozen=True)
class GenerationSettings:
    """greedy: the most likely token at every step.
    sample: draw from softmax(logits / temperature), restricted to the top_k most likely tokens
        and then to the smallest set holding top_p of the probability (nucleus); each filter is
        off at its default, and they combine. temperature 0 is greedy.
    beam: keep the num_beams most likely sequences; finished ones are ranked by their summed
        log-probability / (new tokens)^length_penalty (> 1 favours longer ones, < 1 shorter).
    """

    strategy: str = "sample"
    max_new_tokens: int = 256
    num_samples: int = 1  # sequences per prompt (beam search: the best num_samples beams)
    temperature: float = 1.0
    top_k: int | None = None  # None: no top-k filter
    top_p: float = 1.0  # 1.0: no nucleus filter
    num_beams: int = 4
    length_penalty: float = 1.0
    stop_at_eos: bool = True
    use_cache: bool = True

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}.")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}.")
        if self.num_samples < 1:
            raise ConfigError(f"num_samples must be at least 1, not {self.num_samples}.")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be 0 (greedy) or more, not {self.temperature}.")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1 (or null for no limit), not {self.top_k}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1] (1 keeps every token), not {self.top_p}.")
        if self.num_beams < 1:
            raise ConfigError(f"num_beams must be at least 1, not {self.num_beams}.")
        if self.strategy == "beam" and self.num_samples > self.num_beams:
            raise ConfigError(
                f"Beam search returns at most num_beams ({self.num_beams}) sequences; lower "
                f"num_samples ({self.num_samples}) or raise num_beams."
            )

    def to_dict(self) -> dict:
        return asdict(self)
