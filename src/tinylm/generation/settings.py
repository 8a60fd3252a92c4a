"""How to generate: the strategy and its knobs, checked once so every strategy can trust them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from tinylm.errors import ConfigError
from tinylm.schema import check_fields, setting

STRATEGIES = ("greedy", "sample", "beam")
# The knobs each strategy reads: given to another strategy, they would change nothing.
STRATEGY_KNOBS = {
    "greedy": (),
    "sample": ("temperature", "top_k", "top_p"),
    "beam": ("num_beams", "length_penalty"),
}


@dataclass(frozen=True)
class GenerationSettings:
    """greedy: the most likely token at every step.
    sample: draw from softmax(logits / temperature), restricted to the top_k most likely tokens
        and then to the smallest set holding top_p of the probability (nucleus); each filter is
        off at its default, and they combine. temperature 0 is greedy.
    beam: keep the num_beams most likely sequences; finished ones are ranked by their summed
        log-probability / (new tokens)^length_penalty (> 1 favours longer ones, < 1 shorter).
    """

    strategy: str = setting("sample", "how each token is chosen", choices=STRATEGIES)
    max_new_tokens: int = setting(256, "tokens generated after the prompt", low=1)
    num_samples: int = setting(
        1, "sequences per prompt (beam search: the best num_samples beams)", low=1
    )
    temperature: float = setting(1.0, "sample: logits are divided by it; 0 is greedy", low=0)
    top_k: int | None = setting(None, "sample: keep the k most likely tokens; null: all", low=1)
    top_p: float = setting(
        1.0, "sample: keep the smallest set holding this much probability; 1: all",
        low=0, low_open=True, high=1,
    )  # fmt: skip
    num_beams: int = setting(4, "beam: sequences kept at every step", low=1)
    length_penalty: float = setting(1.0, "beam: > 1 favours longer text, < 1 shorter", low=0)
    stop_at_eos: bool = setting(True, "end a sequence at the end-of-text token")
    use_cache: bool = setting(True, "KV cache: each step runs the model on one new token")

    def __post_init__(self) -> None:
        # Also for settings made in code (the training samples, the tests), not only from a config.
        own = {field.name: getattr(self, field.name) for field in fields(GenerationSettings)}
        check_fields(own, GenerationSettings)
        if self.strategy == "beam" and self.num_samples > self.num_beams:
            raise ConfigError(
                f"Beam search returns at most num_beams ({self.num_beams}) sequences; lower "
                f"num_samples ({self.num_samples}) or raise num_beams."
            )

    def to_dict(self) -> dict:
        return asdict(self)


def refuse_knobs_without_effect(strategy: str, given: dict[str, object]) -> None:
    """Refuse a knob that was asked for (`given`: name -> value) but that `strategy` does not
    read, e.g. a temperature for beam search, which ranks sequences and never samples."""
    for name, value in given.items():
        readers = [other for other, knobs in STRATEGY_KNOBS.items() if name in knobs]
        if readers and strategy not in readers:
            raise ConfigError(
                f"{name}={value} has no effect with strategy={strategy}: only strategy="
                f"{readers[0]} reads it. Leave {name} out, or use strategy={readers[0]}."
            )
