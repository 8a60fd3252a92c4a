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
    """The defaults are everyone's: conf/generate.yaml holds the same values, and the
    playground's API uses them for a field a request leaves out.

    greedy: the most likely token at every step.
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
    temperature: float = setting(0.8, "sample: logits are divided by it; 0 is greedy", low=0)
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
        if self.num_samples > 1 and self.always_picks_the_most_likely():
            raise ConfigError(
                f"num_samples={self.num_samples} would give {self.num_samples} identical "
                f"sequences: {self.picking_rule()} picks the most likely token every time. Use "
                "strategy=sample for different ones (strategy=beam for the best few), or "
                "num_samples=1."
            )
        if self.strategy == "beam" and self.num_samples > self.num_beams:
            raise ConfigError(
                f"Beam search returns at most num_beams ({self.num_beams}) sequences; lower "
                f"num_samples ({self.num_samples}) or raise num_beams."
            )

    def to_dict(self) -> dict:
        return asdict(self)

    def always_picks_the_most_likely(self) -> bool:
        """Whether every sequence is the same: greedy decoding, or sampling that keeps only
        the most likely token (temperature 0, top_k 1)."""
        return self.strategy == "greedy" or (
            self.strategy == "sample" and (self.temperature == 0 or self.top_k == 1)
        )

    def picking_rule(self) -> str:
        """The setting that makes decoding greedy, as the user wrote it."""
        if self.strategy == "greedy":
            return "strategy=greedy"
        return "temperature=0" if self.temperature == 0 else "top_k=1"


def refuse_knobs_without_effect(settings: GenerationSettings, given: dict[str, object]) -> None:
    """Refuse a knob that was asked for (`given`: name -> value) but that changes nothing with
    `settings`: one the strategy does not read (a temperature for beam search, which ranks
    sequences and never samples), or a filter of sampling that keeps only the most likely token
    anyway (top_p with temperature=0)."""
    strategy = settings.strategy
    for name, value in given.items():
        readers = [other for other, knobs in STRATEGY_KNOBS.items() if name in knobs]
        if readers and strategy not in readers:
            raise ConfigError(
                f"{name}={value} has no effect with strategy={strategy}: only strategy="
                f"{readers[0]} reads it. Leave {name} out, or use strategy={readers[0]}."
            )
    if strategy == "sample" and settings.always_picks_the_most_likely():
        rule = settings.picking_rule()
        for name in ("temperature", "top_k", "top_p"):
            if name in given and name != rule.split("=")[0]:
                raise ConfigError(
                    f"{name}={given[name]} has no effect with {rule}, which picks the most "
                    f"likely token every time. Leave {name} out, or change {rule}."
                )


def refuse_top_k_beyond(settings: GenerationSettings, vocab_size: int) -> None:
    """top_k at or beyond the model's vocabulary keeps every token: it would change nothing."""
    if (
        settings.strategy == "sample"
        and settings.top_k is not None
        and settings.top_k >= vocab_size
    ):
        raise ConfigError(
            f"top_k={settings.top_k} has no effect: this model has {vocab_size} tokens, so it "
            f"keeps them all. Give top_k below {vocab_size}, or leave it out (null: all)."
        )
