"""generate(): continue a prompt with the strategy the settings name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from tinylm.errors import PromptError
from tinylm.generation.beam_search import beam_search
from tinylm.generation.completion import Completion, completion_until_eos
from tinylm.generation.decoder import SlidingWindowDecoder
from tinylm.generation.sampling import choose_next_tokens
from tinylm.generation.settings import GenerationSettings
from tinylm.model import GPT
from tinylm.tokenizers import Tokenizer


def encode_prompt(tokenizer: Tokenizer, prompt: str, block_size: int) -> list[int]:
    """The prompt's token ids. An empty prompt starts a new document: it is the end-of-text
    token, the separator that precedes every document in training."""
    ids = tokenizer.encode(prompt) if prompt else [tokenizer.eos_id]
    if len(ids) > block_size:
        raise PromptError(
            f"The prompt is {len(ids):,} tokens long, more than the model's context of "
            f"{block_size:,} tokens; shorten it."
        )
    return ids


@torch.inference_mode()
def generate(
    model: GPT,
    prompt_ids: list[int],
    settings: GenerationSettings,
    eos_id: int,
    generator: torch.Generator | None = None,
    on_token: Callable[[int], None] | None = None,
) -> list[Completion]:
    """settings.num_samples continuations of one prompt.

    `generator` seeds sampling (the same seed gives the same text); `on_token` is called with
    each new token as soon as it is chosen, for streaming a single greedy or sampled sequence.
    The model should be in eval mode.
    """
    if settings.strategy == "beam":
        with one_thread_on_cpu(model.tok_emb.weight.device):
            return beam_search(model, prompt_ids, settings, eos_id)
    return sample(model, prompt_ids, settings, eos_id, generator, on_token)


@contextmanager
def one_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """Decode on one CPU thread. A decoding step is a few hundred operations on a token or a
    few: split over threads, each pays for waking and joining them, and a thread the operating
    system has given to another process stalls every one of them. On a 2-core machine shared
    with other jobs, one thread decoded the medium model 10× faster than two
    (docs/performance.md). The caller's setting is restored afterwards."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class Step:
    """One step of greedy decoding or sampling."""

    logits: torch.Tensor  # (B, V) the model's next-token logits, before temperature and filters
    tokens: torch.Tensor  # (B,) the tokens chosen from them
    ended: torch.Tensor  # (B,) whether each sequence has ended, at this step or before


@torch.inference_mode()
def decode_steps(
    model: GPT,
    prompt_ids: list[int],
    settings: GenerationSettings,
    eos_id: int,
    generator: torch.Generator | None,
) -> Iterator[Step]:
    """Greedy decoding or sampling of num_samples sequences at once, one batch row each, one
    Step at a time: the caller sees every step as it is made (streaming, the playground) and
    may stop early by not asking for more. The model runs on one CPU thread while the steps
    are drawn (one_thread_on_cpu): iterate in one thread."""
    device = model.tok_emb.weight.device
    with one_thread_on_cpu(device):
        prompts = torch.tensor([prompt_ids] * settings.num_samples, device=device)  # (B, T)
        decoder = SlidingWindowDecoder(model, prompts, settings.use_cache)
        stop_token = eos_id if settings.stop_at_eos else None
        ended = torch.zeros(settings.num_samples, dtype=torch.bool, device=device)  # (B,)
        for step in range(settings.max_new_tokens):
            logits = decoder.logits
            next_tokens = choose_next_tokens(logits, settings, generator)  # (B,)
            if stop_token is not None:
                # A sequence that has ended keeps receiving end-of-text until the others end.
                next_tokens = next_tokens.masked_fill(ended, stop_token)
                ended = ended | (next_tokens == stop_token)
            yield Step(logits, next_tokens, ended)
            if ended.all() or step == settings.max_new_tokens - 1:
                return  # no need to run the model for a token nobody will read
            decoder.append(next_tokens)


def sample(
    model: GPT,
    prompt_ids: list[int],
    settings: GenerationSettings,
    eos_id: int,
    generator: torch.Generator | None,
    on_token: Callable[[int], None] | None,
) -> list[Completion]:
    """Greedy decoding or sampling of num_samples sequences, each cut at its end-of-text."""
    if on_token is not None and settings.num_samples != 1:
        raise ValueError("Only a single sequence can be streamed.")
    steps: list[torch.Tensor] = []  # one (B,) tensor of new tokens per step
    for step in decode_steps(model, prompt_ids, settings, eos_id, generator):
        steps.append(step.tokens)
        if on_token is not None and not step.ended[0]:
            on_token(int(step.tokens[0]))
    rows = torch.stack(steps, dim=1).tolist()  # (B, new tokens)
    return [completion_until_eos(row, eos_id if settings.stop_at_eos else None) for row in rows]
