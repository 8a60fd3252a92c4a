"""Generation: sampling strategies, beam search, the sliding-window decoder, streaming output."""

from tinylm.generation.completion import Completion
from tinylm.generation.generate import Step, decode_steps, encode_prompt, generate
from tinylm.generation.prompts import read_prompts
from tinylm.generation.settings import GenerationSettings
from tinylm.generation.streaming import TextStream

__all__ = [
    "Completion",
    "GenerationSettings",
    "Step",
    "TextStream",
    "decode_steps",
    "encode_prompt",
    "generate",
    "read_prompts",
]
