"""Generation: sampling strategies, beam search, the sliding-window decoder, streaming output."""

from tinylm.generation.command import generate_from_checkpoint
from tinylm.generation.completion import Completion
from tinylm.generation.generate import encode_prompt, generate
from tinylm.generation.settings import GenerationSettings

__all__ = [
    "Completion",
    "GenerationSettings",
    "encode_prompt",
    "generate",
    "generate_from_checkpoint",
]
