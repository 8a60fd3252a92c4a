r"""Prompts as typed on the command line: \n, \t and \\ read as a line break, a tab and a
backslash, through Hydra's parsing of the override as a user types it."""

import pytest

from tests.conftest import compose_config
from tinylm.errors import ConfigError, PromptError
from tinylm.generation import read_prompts
from tinylm.generation.prompts import unescape


@pytest.mark.parametrize(
    "typed, prompt",
    [
        (r"""prompt="ROMEO:\nBut soft\tO" """.strip(), "ROMEO:\nBut soft\tO"),
        (r"prompt=ROMEO:\nBut", "ROMEO:\nBut"),  # unquoted too
        (r"""prompt="C:\\new, \q" """.strip(), "C:\\new, \\q"),  # \\ keeps one backslash
        (r"'prompt=[A:\nB,C]'".strip("'"), None),  # a list: each prompt alike
    ],
)
def test_a_typed_line_break_becomes_a_line_break(typed, prompt):
    prompts = read_prompts(compose_config("generate", typed).prompt, None)
    assert prompts == ([prompt] if prompt is not None else ["A:\nB", "C"])


def test_escapes_are_read_once_and_others_stay_as_typed():
    assert unescape(r"a\\nb") == r"a\nb"  # an escaped backslash, then n: not a line break
    assert unescape(r"\x41 \u00e9 \"") == r"\x41 \u00e9 \""
    assert unescape("") == ""


def test_a_prompt_file_is_taken_as_it_is(tmp_path):
    path = tmp_path / "prompt.txt"
    path.write_text("ROMEO:\\n literally\nBut soft\n")
    assert read_prompts(None, str(path)) == ["ROMEO:\\n literally\nBut soft"]
    with pytest.raises(ConfigError, match="not both"):
        read_prompts("x", str(path))
    with pytest.raises(PromptError, match="Cannot read prompt_file"):
        read_prompts(None, str(tmp_path / "missing.txt"))
