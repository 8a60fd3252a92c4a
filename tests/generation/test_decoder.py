"""The KV cache and the sliding window: cached decoding chooses exactly the uncached tokens."""

import pytest
import torch

from tests.generation.helpers import random_gpt, tokens_of, trained
from tinylm.generation.decoder import SlidingWindowDecoder
from tinylm.generation.generate import encode_prompt


def test_cached_and_uncached_greedy_decoding_agree_for_300_tokens_past_the_context(trained_run):
    loaded = trained(trained_run)
    prompt = encode_prompt(loaded.tokenizer, "Once upon a time", loaded.model.config.block_size)
    settings = dict(strategy="greedy", max_new_tokens=300, stop_at_eos=False)
    (cached,) = tokens_of(loaded.model, prompt, use_cache=True, **settings)
    (uncached,) = tokens_of(loaded.model, prompt, use_cache=False, **settings)
    assert len(prompt) + len(cached) > 2 * loaded.model.config.block_size  # slid several times
    assert cached == uncached


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal", "rope"])
def test_cached_and_uncached_sampling_agree_for_both_attentions_and_encodings(
    attention, pos_encoding
):
    # Sampling, with one seed for both: a random model's greedy text soon repeats one token,
    # which would prove little; sampled text visits the whole vocabulary.
    model = random_gpt(attention=attention, pos_encoding=pos_encoding)  # context of 16
    settings = dict(strategy="sample", max_new_tokens=100, stop_at_eos=False, num_samples=2)
    cached = tokens_of(model, [3, 1, 4], use_cache=True, **settings)
    uncached = tokens_of(model, [3, 1, 4], use_cache=False, **settings)
    assert cached == uncached
    assert len(set(cached[0])) > 10


@pytest.mark.parametrize("use_cache", [True, False])
def test_the_window_restarts_at_half_the_context_when_it_would_outgrow_it(use_cache):
    model = random_gpt()  # context 16: the window restarts at its newest 8 tokens
    decoder = SlidingWindowDecoder(model, torch.tensor([[5] * 10]), use_cache=use_cache)
    expected_window = 10
    for step in range(40):
        decoder.append(torch.tensor([step % 20]))
        expected_window = expected_window + 1 if expected_window < 16 else 8
        window = decoder.tokens[:, decoder.window_start :]
        assert window.size(1) == expected_window
        assert decoder.tokens.size(1) == 11 + step  # the whole sequence is kept
        # The logits are the model's, read over exactly that window from position 0.
        torch.testing.assert_close(decoder.logits, model(window)[:, -1], rtol=1e-5, atol=1e-5)
