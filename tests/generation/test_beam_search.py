"""Beam search against brute force on a vocabulary small enough to try every sequence."""

import itertools

import pytest
import torch

from tests.generation.helpers import random_gpt, tokens_of, trained
from tinylm.generation import GenerationSettings, generate
from tinylm.generation.generate import encode_prompt

EOS = 0
VOCAB = 4
LENGTH = 3
PROMPT = [1, 2]


def brute_force_ranking(model, stop_at_eos: bool, length_penalty: float):
    """Every sequence of up to LENGTH new tokens (ending at its first EOS when stopping at
    EOS), with its score sum(log p) / (new tokens)^length_penalty, best first."""
    scored = {}
    for candidate in itertools.product(range(VOCAB), repeat=LENGTH):
        if stop_at_eos and EOS in candidate:
            candidate = candidate[: candidate.index(EOS) + 1]
        ids = torch.tensor([PROMPT + list(candidate)])
        with torch.no_grad():
            log_probs = model(ids)[0].log_softmax(dim=-1)  # (T, V)
        steps = range(len(PROMPT) - 1, ids.size(1) - 1)
        total = sum(log_probs[t, ids[0, t + 1]].item() for t in steps)
        scored[candidate] = total / len(candidate) ** length_penalty
    return sorted(scored.items(), key=lambda item: item[1], reverse=True)


@pytest.mark.parametrize("stop_at_eos", [True, False])
@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_beam_search_finds_the_best_sequences_that_brute_force_finds(
    stop_at_eos, length_penalty, seed
):
    model = random_gpt(seed=seed, vocab_size=VOCAB)
    ranking = brute_force_ranking(model, stop_at_eos, length_penalty)
    # Enough beams to keep every prefix: beam search is then exhaustive, and its pruning and
    # early stopping must not lose the best sequences.
    settings = GenerationSettings(
        strategy="beam", num_beams=VOCAB ** (LENGTH - 1), num_samples=3, max_new_tokens=LENGTH,
        length_penalty=length_penalty, stop_at_eos=stop_at_eos,
    )  # fmt: skip
    found = generate(model, PROMPT, settings, EOS)
    for completion, (sequence, score) in zip(found, ranking[:3], strict=True):
        ended = stop_at_eos and sequence[-1] == EOS
        assert completion.tokens == list(sequence[:-1] if ended else sequence)
        assert completion.finish_reason == ("eos" if ended else "length")
        assert completion.score == pytest.approx(score, abs=1e-5)


def test_cached_and_uncached_beam_search_agree_past_the_context(trained_run):
    loaded = trained(trained_run)
    prompt = encode_prompt(loaded.tokenizer, "Once upon a time", 128)
    settings = dict(strategy="beam", num_beams=3, num_samples=3, max_new_tokens=160,
                    stop_at_eos=False)  # fmt: skip
    cached = tokens_of(loaded.model, prompt, use_cache=True, **settings)
    uncached = tokens_of(loaded.model, prompt, use_cache=False, **settings)
    assert len(prompt) + len(cached[0]) > 128
    assert cached == uncached


def test_cached_and_uncached_beam_search_agree_on_a_modern_grouped_query_model():
    # Rotary positions at the cached position, a cache of one key/value head, the cache's rows
    # reordered between beams: the same beams as recomputing every step.
    model = random_gpt(
        pos_encoding="rope", norm="rmsnorm", norm_weight=False, mlp="relu2", qk_norm=True,
        embed_norm=True, tie_embeddings=False, logit_softcap=15.0, n_kv_head=1,
    )  # fmt: skip
    settings = dict(strategy="beam", num_beams=3, num_samples=3, max_new_tokens=40,
                    stop_at_eos=False)  # fmt: skip
    cached = tokens_of(model, [3, 1, 4], use_cache=True, **settings)
    assert cached == tokens_of(model, [3, 1, 4], use_cache=False, **settings)
    assert len(cached[0]) == 40
