"""The prompts a command continues or draws, as the user typed them: `prompt=` on the command
line, where a shell cannot pass a line break, or `prompt_file=`, whose text is taken as it is."""

from __future__ import annotations

import re
from pathlib import Path

from tinylm.errors import ConfigError, PromptError

# In a prompt typed on the command line, \n is a line break, \t a tab and \\ one backslash;
# any other backslash stays as typed.
ESCAPE = re.compile(r"\\([\\nt])")
ESCAPED = {"\\": "\\", "n": "\n", "t": "\t"}


def unescape(prompt: str) -> str:
    r"""`prompt` with \n, \t and \\ turned into a line break, a tab and a backslash."""
    return ESCAPE.sub(lambda match: ESCAPED[match.group(1)], prompt)


def read_prompts(prompt: str | list | None, prompt_file: str | None) -> list[str]:
    r"""The prompts to continue: `prompt` (a string or a list, \n read as a line break), or the
    text of `prompt_file` as one prompt (less the final newline editors add); neither means one
    empty prompt."""
    if prompt is not None and prompt_file:
        raise ConfigError("Give prompt= or prompt_file=, not both.")
    if prompt_file:
        try:
            return [Path(prompt_file).read_text(encoding="utf-8").removesuffix("\n")]
        except (OSError, UnicodeDecodeError) as error:
            raise PromptError(f"Cannot read prompt_file {prompt_file}: {error}.") from None
    if prompt is None:
        return [""]
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise PromptError("prompt is an empty list; give at least one prompt.")
    return [unescape(str(p)) for p in prompts]  # Hydra reads prompt=42 as a number
