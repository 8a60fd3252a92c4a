"""Sampling strategies: the filters, their limits (each reduces to greedy), seeds, EOS."""

import math
import re

import pytest
import torch

from tests.generation.helpers import tokens_of, trained
from tinylm.errors import ConfigError
from tinylm.generation import GenerationSettings
from tinylm.generation.generate import encode_prompt
from tinylm.generation.sampling import choose_next_tokens, keep_top_p
from tinylm.generation.settings import refuse_knobs_without_effect

INF = math.inf


def test_top_k_draws_among_the_k_largest_logits_of_each_row_in_proportion():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, -1.0, 5.0, 4.0]]).repeat(5000, 1)
    generator = torch.Generator().manual_seed(0)
    settings = GenerationSettings(strategy="sample", temperature=1.0, top_k=2)
    drawn = choose_next_tokens(logits, settings, generator).view(5000, 2)  # (draws, rows)
    first, second = drawn[:, 0], drawn[:, 1]
    assert set(first.tolist()) == {1, 2} and set(second.tolist()) == {2, 3}
    # softmax over the two kept logits: e^3 / (e^3 + e^2) = 0.731
    assert (first == 1).float().mean().item() == pytest.approx(0.731, abs=0.02)
    assert (second == 2).float().mean().item() == pytest.approx(0.731, abs=0.02)
    beyond = GenerationSettings(strategy="sample", top_k=10)  # k beyond the vocabulary
    assert set(choose_next_tokens(logits, beyond, generator).tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    "p, kept",
    [(0.5, [True, False, False, False]),  # the top token alone holds 0.5
     (0.51, [True, True, False, False]),
     (0.8, [True, True, False, False]),  # 0.5 + 0.3 reach 0.8 exactly
     (0.81, [True, True, True, False]),
     (1.0, [True, True, True, True]),
     (1e-9, [True, False, False, False])],  # the most likely token is always kept
)  # fmt: skip
def test_top_p_keeps_the_smallest_set_that_holds_p(p, kept):
    probs = torch.tensor([[0.3, 0.05, 0.5, 0.15]])
    order = [2, 0, 3, 1]  # most likely first
    filtered = keep_top_p(probs.log(), p)
    expected = torch.zeros(4, dtype=torch.bool)
    expected[order] = torch.tensor(kept)
    assert (filtered[0] > -INF).tolist() == expected.tolist()


@pytest.fixture(scope="module")
def model_and_prompt(trained_run):
    loaded = trained(trained_run)
    return loaded.model, encode_prompt(loaded.tokenizer, "Once upon a time", 128)


@pytest.mark.parametrize(
    "settings",
    [dict(strategy="sample", top_k=1),
     dict(strategy="sample", temperature=0),
     dict(strategy="sample", temperature=1e-6),
     dict(strategy="sample", top_p=1e-6),
     dict(strategy="beam", num_beams=1)],
    ids=["top_k=1", "temperature=0", "temperature=1e-6", "tiny top_p", "num_beams=1"],
)  # fmt: skip
def test_each_limit_of_the_strategies_reduces_to_greedy(model_and_prompt, settings):
    model, prompt = model_and_prompt
    common = dict(max_new_tokens=150, stop_at_eos=False, num_samples=1)
    greedy = tokens_of(model, prompt, strategy="greedy", **common)
    assert tokens_of(model, prompt, seed=1, **common, **settings) == greedy
    assert tokens_of(model, prompt, seed=2, **common, **settings) == greedy


def test_the_same_seed_gives_the_same_samples_and_another_seed_others(model_and_prompt):
    model, prompt = model_and_prompt
    settings = dict(max_new_tokens=100, num_samples=3, temperature=1.0, top_k=20, top_p=0.95)
    first = tokens_of(model, prompt, seed=7, **settings)
    assert tokens_of(model, prompt, seed=7, **settings) == first
    assert tokens_of(model, prompt, seed=8, **settings) != first
    assert first[0] != first[1]  # the samples of one batch differ from each other too


def test_a_sequence_stops_at_its_first_end_of_text_token(model_and_prompt):
    model, prompt = model_and_prompt
    settings = dict(max_new_tokens=200, num_samples=4, temperature=1.0)
    # With one seed, stopping changes nothing before each sequence's first EOS (id 0).
    running_on = tokens_of(model, prompt, seed=3, stop_at_eos=False, **settings)
    stopped = tokens_of(model, prompt, seed=3, stop_at_eos=True, **settings)
    ended = 0
    for full, cut in zip(running_on, stopped, strict=True):
        assert 0 not in cut
        if 0 in full:
            assert cut == full[: full.index(0)]
            ended += 1
        else:
            assert cut == full
    assert ended >= 2  # this model ends most stories within 200 characters


@pytest.mark.parametrize(
    "settings, message",
    [(dict(top_p=0.0), "top_p=0.0 is not allowed: top_p takes a number in \\(0, 1\\]"),
     (dict(top_p=1.5), "top_p=1.5 is not allowed: top_p takes a number in \\(0, 1\\]"),
     (dict(temperature=-0.1), "temperature=-0.1 .* takes a number ≥ 0"),
     (dict(num_beams=0), "num_beams=0 .* takes a whole number ≥ 1"),
     (dict(top_k=0), "top_k=0 .* takes a whole number ≥ 1 or null"),
     (dict(strategy="nucleus"), "strategy=nucleus .* takes one of greedy, sample, beam"),
     (dict(max_new_tokens=0), "max_new_tokens=0 .* takes a whole number ≥ 1"),
     (dict(strategy="beam", num_beams=2, num_samples=3), "at most num_beams"),
     (dict(strategy="greedy", num_samples=3), "num_samples=3 would give 3 identical sequences: "
      "strategy=greedy picks the most likely token every time"),
     (dict(temperature=0, num_samples=2), "2 identical sequences: temperature=0 picks"),
     (dict(top_k=1, num_samples=2), "2 identical sequences: top_k=1 picks")],
)  # fmt: skip
def test_bad_settings_say_what_is_wrong(settings, message):
    with pytest.raises(ConfigError, match=message):
        GenerationSettings(**settings)


@pytest.mark.parametrize(
    "strategy, given, message",
    [("beam", {"temperature": 0.5}, "temperature=0.5 has no effect with strategy=beam: only "
      "strategy=sample reads it. Leave temperature out, or use strategy=sample."),
     ("greedy", {"top_k": 5}, "top_k=5 has no effect with strategy=greedy"),
     ("sample", {"num_beams": 8}, "num_beams=8 has no effect with strategy=sample: only "
      "strategy=beam reads it"),
     ("sample", {"temperature": 0, "top_p": 0.9}, "top_p=0.9 has no effect with temperature=0, "
      "which picks the most likely token every time. Leave top_p out, or change temperature=0."),
     ("sample", {"top_k": 1, "temperature": 1.5}, "temperature=1.5 has no effect with top_k=1")],
)  # fmt: skip
def test_a_knob_that_changes_nothing_is_refused(strategy, given, message):
    settings = GenerationSettings(strategy=strategy, **{
        name: value for name, value in given.items() if name in ("temperature", "top_k")
    })  # fmt: skip
    with pytest.raises(ConfigError, match=re.escape(message)):
        refuse_knobs_without_effect(settings, given)


def test_the_knobs_a_strategy_reads_pass():
    sample = GenerationSettings(strategy="sample", temperature=0.5, top_k=5, max_new_tokens=9)
    refuse_knobs_without_effect(sample, {"temperature": 0.5, "top_k": 5, "max_new_tokens": 9})
    beam = GenerationSettings(strategy="beam", num_beams=8, length_penalty=1.2)
    refuse_knobs_without_effect(beam, {"num_beams": 8, "length_penalty": 1.2})
    greedy_by_temperature = GenerationSettings(strategy="sample", temperature=0)
    refuse_knobs_without_effect(greedy_by_temperature, {"temperature": 0})
