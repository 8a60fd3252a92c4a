"""What the playground asks of its model: the model card, how a prompt splits into tokens, a
generation one step at a time with the candidates of every step, and attention weights.

Generation is tinylm.generation's own loop (decode_steps), seeded as scripts/generate.py
seeds it, so the same checkpoint, prompt, settings and seed give the same text; attention is
tinylm.inspection's, the numbers scripts/attention.py draws.

Shapes: L layers, H heads, T tokens.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

import torch

from tinylm.checkpoint import LoadedCheckpoint
from tinylm.errors import ConfigError, TinyLMError
from tinylm.generation import GenerationSettings, TextStream, decode_steps, encode_prompt
from tinylm.generation.candidates import top_candidates
from tinylm.inspection import attention_weights
from tinylm.serve.limits import Limits
from tinylm.serve.requests import (
    MAX_SEED,
    STREAMED_STRATEGIES,
    AttentionRequest,
    BadRequest,
    GenerateRequest,
    check_range,
)


@dataclass(frozen=True)
class Generation:
    """A checked generation request: what decode_steps needs, and what the events show."""

    prompt_ids: list[int]
    settings: GenerationSettings
    seed: int
    candidates: int


class Playground:
    def __init__(self, loaded: LoadedCheckpoint, training: dict, limits: Limits) -> None:
        """`training`: what the run folder says of the checkpoint (steps, val loss, bits per
        byte); `limits`: how much one request may ask."""
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = self.model.tok_emb.weight.device
        self.config = self.model.config
        self.training = training
        self.limits = limits

    def card(self) -> dict:
        """GET /api/model: the model, its tokenizer and training, and the request limits."""
        return {
            "checkpoint": self.loaded.path.name,
            "parameters": self.model.num_parameters(),
            "config": self.config.to_dict(),
            "tokenizer": self.tokenizer.describe(),
            "vocab_size": self.tokenizer.vocab_size,
            "eos_id": self.tokenizer.eos_id,
            "global_step": self.loaded.global_step,
            "training": self.training,
            "device": str(self.device),
            "limits": {
                "max_prompt_chars": self.limits.max_prompt_chars,
                "max_new_tokens": self.limits.max_new_tokens,
                "max_temperature": self.limits.max_temperature,
                "max_candidates": self.limits.max_candidates,
            },
            "defaults": GenerateRequest().model_dump(),
        }

    def pieces(self, ids: list[int]) -> list[dict]:
        """Each token's id and text."""
        return [{"id": token, "text": self.tokenizer.decode([token])} for token in ids]

    def encode(self, prompt: str) -> list[int]:
        """The prompt's ids, as generate.py encodes them, or a BadRequest saying why not."""
        check_range("The prompt's length in characters", len(prompt), 0,
                    self.limits.max_prompt_chars, " (this server's limit)")  # fmt: skip
        try:
            return encode_prompt(self.tokenizer, prompt, self.config.block_size)
        except TinyLMError as error:  # too long, or a character the tokenizer cannot encode
            raise BadRequest(str(error)) from None

    def tokenize(self, prompt: str) -> dict:
        """POST /api/tokenize: how `prompt` splits into tokens."""
        ids = self.encode(prompt)
        return {"tokens": self.pieces(ids), "count": len(ids), "context": self.config.block_size}

    def generation(self, request: GenerateRequest) -> Generation:
        """The generation `request` asks for, checked (a BadRequest says what is wrong)."""
        limits = self.limits
        if request.strategy not in STREAMED_STRATEGIES:
            raise BadRequest(
                f"strategy must be greedy or sample here, not {request.strategy!r}: the playground "
                "streams one sequence token by token (scripts/generate.py does beam search)."
            )
        check_range("max_new_tokens", request.max_new_tokens, 1, limits.max_new_tokens,
                    " (this server's limit)")  # fmt: skip
        check_range("temperature", request.temperature, 0, limits.max_temperature)
        check_range("candidates", request.candidates, 1, limits.max_candidates)
        if request.seed is not None:
            check_range("seed", request.seed, 0, MAX_SEED)
        if request.top_k is not None:
            check_range("top_k", request.top_k, 1, self.tokenizer.vocab_size,
                        " (the vocabulary's size), or null for no limit")  # fmt: skip
        try:
            settings = GenerationSettings(
                strategy=request.strategy, max_new_tokens=request.max_new_tokens,
                temperature=request.temperature, top_k=request.top_k, top_p=request.top_p,
                stop_at_eos=request.stop_at_eos,
            )  # fmt: skip
        except ConfigError as error:
            raise BadRequest(str(error)) from None
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        return Generation(self.encode(request.prompt), settings, seed, request.candidates)

    def generate(self, generation: Generation) -> Iterator[dict]:
        """The events of a generation: "start", one "token" per new token (its text piece, id
        and the top candidates of its step), then "end". Stopping the iteration early stops the
        decoding. Run it on one thread (decode_steps sets that thread to one CPU thread)."""
        settings, tokenizer = generation.settings, self.tokenizer
        yield {
            "type": "start",
            "seed": generation.seed,
            "prompt": self.pieces(generation.prompt_ids),
            "settings": settings.to_dict(),
        }
        started = time.perf_counter()
        # Seeded as scripts/generate.py seeds it.
        generator = torch.Generator(device=self.device).manual_seed(generation.seed)
        text = TextStream(tokenizer)
        tokens: list[int] = []
        finish_reason = "length"
        steps = decode_steps(
            self.model, generation.prompt_ids, settings, tokenizer.eos_id, generator
        )
        with closing(steps):
            for step in steps:
                if step.ended[0]:
                    finish_reason = "eos"
                    break
                token = int(step.tokens[0])
                tokens.append(token)
                candidates = top_candidates(step.logits[0], settings, generation.candidates, token)
                yield {
                    "type": "token",
                    "index": len(tokens) - 1,
                    "id": token,
                    "text": text.push(token),  # "" while a character is incomplete
                    "candidates": [
                        {
                            "id": candidate.id,
                            "text": tokenizer.decode([candidate.id]),
                            "p": candidate.probability,
                            "p_sampled": candidate.sampled_probability,
                        }
                        for candidate in candidates
                    ],
                }
        seconds = time.perf_counter() - started
        yield {
            "type": "end",
            "finish_reason": finish_reason,
            "text": tokenizer.decode(tokens),
            "ids": tokens,
            "seconds": round(seconds, 4),
            "tokens_per_second": round(len(tokens) / seconds, 2) if tokens else 0.0,
        }

    def attention_ids(self, request: AttentionRequest) -> tuple[list[int], int]:
        """The tokens and the query position an attention request names, checked."""
        if (request.prompt is None) == (request.ids is None):
            raise BadRequest("Give the text as prompt or its token ids as ids, one of the two.")
        if request.prompt is not None:
            ids = self.encode(request.prompt)
        else:
            ids = request.ids
            check_range("The number of ids", len(ids), 1, self.config.block_size,
                        " (the model's context)")  # fmt: skip
            for token in ids:
                check_range("Every id", token, 0, self.tokenizer.vocab_size - 1)
        position = len(ids) - 1 if request.position is None else request.position
        check_range("position", position, 0, len(ids) - 1, " (the tokens, counted from 0)")
        return ids, position

    def attention(self, ids: list[int], position: int) -> dict:
        """POST /api/attention: for the token at `position`, the weight every head of every
        layer gives each token up to it: weights[l][h][j], j <= position."""
        idx = torch.tensor([ids[: position + 1]], device=self.device)  # (1, position + 1)
        weights = attention_weights(self.model, idx)[:, 0, :, -1]  # (L, 1, H, T, T) -> (L, H, T)
        return {
            "tokens": self.pieces(ids[: position + 1]),
            "position": position,
            "weights": weights.float().cpu().tolist(),
        }
