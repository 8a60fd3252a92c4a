"""What a generation strategy returns for each sequence it produced."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Completion:
    tokens: list[int]  # the new tokens, without the end-of-text token that ended them
    finish_reason: str  # "eos": the model ended the text; "length": max_new_tokens reached
    score: float | None = None  # beam search: the length-normalised log-probability


def completion_until_eos(tokens: list[int], eos_id: int | None) -> Completion:
    """Cut `tokens` at the first end-of-text token, if `eos_id` is given and one occurs."""
    if eos_id is not None and eos_id in tokens:
        return Completion(tokens[: tokens.index(eos_id)], "eos")
    return Completion(tokens, "length")
