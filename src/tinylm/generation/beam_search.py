"""Beam search: follow the num_beams most likely sequences instead of one.

At every step each running beam is extended by every token; of all extensions, those ending
in end-of-text become finished hypotheses, and the num_beams most likely others run on.
Finished hypotheses are ranked by a length-normalised score,

    score = (sum of the log-probabilities of the new tokens) / (number of new tokens)^length_penalty

(the end-of-text token counts as a new token). The search stops at max_new_tokens, or as soon
as no running beam can still beat the worst of the num_beams best finished hypotheses.

Shapes: K running beams, V vocabulary.
"""

from __future__ import annotations

import torch

from tinylm.generation.completion import Completion
from tinylm.generation.decoder import SlidingWindowDecoder
from tinylm.generation.settings import GenerationSettings
from tinylm.model import GPT


def length_normalised(log_prob_sum: float, length: int, length_penalty: float) -> float:
    return log_prob_sum / length**length_penalty


def best_reachable_score(
    log_prob_sum: float, length: int, max_length: int, length_penalty: float
) -> float:
    """The highest score any continuation of a running beam could finish with.

    Its log-probability sum can only fall (each token adds log p <= 0), and it finishes with
    between length + 1 and max_length tokens; dividing a negative sum by the largest
    denominator gives the best case: the longest length when length_penalty > 0, else the
    shortest.
    """
    best_length = max_length if length_penalty > 0 else length + 1
    return length_normalised(log_prob_sum, best_length, length_penalty)


def beam_search(
    model: GPT, prompt_ids: list[int], settings: GenerationSettings, eos_id: int
) -> list[Completion]:
    """The settings.num_samples best of the hypotheses found, best first."""
    device = model.tok_emb.weight.device
    num_beams, penalty = settings.num_beams, settings.length_penalty
    stop_token = eos_id if settings.stop_at_eos else None
    prompt_length = len(prompt_ids)
    # One beam to start with: the prompt. It branches into num_beams after the first step.
    decoder = SlidingWindowDecoder(
        model, torch.tensor([prompt_ids], device=device), settings.use_cache
    )
    beam_scores = torch.zeros(1, device=device)  # (K,) summed log-probabilities of new tokens
    finished: list[Completion] = []

    def generated(row: int) -> list[int]:
        return decoder.tokens[row, prompt_length:].tolist()

    for length in range(1, settings.max_new_tokens + 1):
        log_probs = decoder.logits.log_softmax(dim=-1)  # (K, V)
        vocab_size = log_probs.size(-1)
        candidates = (beam_scores[:, None] + log_probs).flatten()  # (K·V,)
        # 2·num_beams candidates, so that num_beams remain to run on even if the others end.
        top_scores, top_index = candidates.topk(min(2 * num_beams, candidates.numel()))
        running: list[tuple[float, int, int]] = []  # (log-prob sum, beam row, token)
        for score, index in zip(top_scores.tolist(), top_index.tolist(), strict=True):
            row, token = divmod(index, vocab_size)
            if token == stop_token:
                normalised = length_normalised(score, length, penalty)
                finished.append(Completion(generated(row), "eos", normalised))
            else:
                running.append((score, row, token))
                if len(running) == num_beams:
                    break
        finished = sorted(finished, key=lambda c: c.score, reverse=True)[:num_beams]

        if length == settings.max_new_tokens:
            for score, row, token in running:
                normalised = length_normalised(score, length, penalty)
                finished.append(Completion([*generated(row), token], "length", normalised))
            break
        best_running = running[0][0]
        if len(finished) == num_beams and finished[-1].score > best_reachable_score(
            best_running, length, settings.max_new_tokens, penalty
        ):
            break
        scores, rows, tokens = zip(*running, strict=True)
        decoder.select(torch.tensor(rows, device=device))
        decoder.append(torch.tensor(tokens, device=device))
        beam_scores = torch.tensor(scores, device=device)

    finished.sort(key=lambda c: c.score, reverse=True)
    return finished[: settings.num_samples]
