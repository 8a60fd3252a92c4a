"""The GPT itself, written from its parts."""

from tinylm.model.config import GPTConfig
from tinylm.model.gpt import GPT

__all__ = ["GPT", "GPTConfig"]
