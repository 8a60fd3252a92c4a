"""The candidates for one step's token, with the probability the model gave each and the one
the draw used: what the playground shows when a generated token is opened.

Shapes: V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tinylm.generation.sampling import draws_greedily, sampling_distribution
from tinylm.generation.settings import GenerationSettings


@dataclass(frozen=True)
class Candidate:
    id: int
    probability: float  # the model's: softmax(logits), before temperature and filters
    # What the draw used: after temperature, top-k and top-p; 0 for a token a filter took out.
    # Greedy decoding puts all of it on the most likely token.
    sampled_probability: float


def top_candidates(
    logits: torch.Tensor, settings: GenerationSettings, count: int, chosen: int
) -> list[Candidate]:
    """The `count` most likely tokens of logits (V,), most likely first, and `chosen` after
    them when it is not among them (a sampled token can be an unlikely one)."""
    model_probs = logits.float().softmax(dim=-1)  # (V,)
    if draws_greedily(settings):
        sampled = torch.zeros_like(model_probs)
        sampled[logits.argmax()] = 1.0
    else:
        probs, ids = sampling_distribution(logits[None], settings)  # (1, K) each, or ids None
        sampled = (
            probs[0]
            if ids is None
            else torch.zeros_like(model_probs).index_put_((ids[0],), probs[0])
        )
    top = model_probs.topk(min(count, model_probs.numel())).indices.tolist()
    if chosen not in top:
        top.append(chosen)
    index = torch.tensor(top, device=logits.device)
    rows = torch.stack([model_probs[index], sampled[index]]).tolist()  # (2, count or count + 1)
    return [
        Candidate(token, probability, sampled_probability)
        for token, probability, sampled_probability in zip(top, *rows, strict=True)
    ]
