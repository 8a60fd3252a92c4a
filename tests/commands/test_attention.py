"""scripts/attention.py and the function behind it, on the session's trained checkpoint."""

import pytest
import torch

from tests.conftest import compose_config, run_script
from tinylm.checkpoint import load_checkpoint
from tinylm.commands import run
from tinylm.commands.attention import attention
from tinylm.inspection import attention_title, attention_weights


def attention_cfg(trained_run, tmp_path, *overrides):
    return compose_config(
        "attention", f"ckpt_path={trained_run / 'run'}", f"paths.output_dir={tmp_path}",
        *overrides,
    )  # fmt: skip


def test_the_png_shows_the_weights_of_the_checkpoints_model(trained_run, tmp_path, capsys):
    result = attention(attention_cfg(trained_run, tmp_path, "prompt=Tom had a dog"))
    assert result.path == tmp_path / "attention.png"
    assert result.path.read_bytes().startswith(b"\x89PNG")
    loaded = load_checkpoint(trained_run / "run")
    assert result.token_ids == loaded.tokenizer.encode("Tom had a dog")
    T = len(result.token_ids)
    # The weights drawn are those the model computes, read with its own attention code.
    expected = attention_weights(loaded.model, torch.tensor([result.token_ids]))[:, 0]
    assert result.weights.shape == (2, 2, T, T)  # tiny: 2 layers × 2 heads
    torch.testing.assert_close(result.weights, expected, rtol=0, atol=0)
    assert capsys.readouterr().out == ""  # no trace unless asked


def test_the_title_names_the_checkpoint_its_step_and_the_model(trained_run):
    loaded = load_checkpoint(trained_run / "run")
    title = attention_title(loaded, "Tom " * 20)
    first_line, second_line, third_line = title.splitlines()
    assert first_line == f"run/{loaded.path.name}, step 200"
    assert second_line.startswith("2 layers × 2 heads, d_model 64, ")
    assert third_line == f"prompt {'Tom ' * 15 + '…'!r}"  # 60 characters, then …


def test_a_typed_line_break_and_a_prompt_file_are_the_prompt(trained_runs, tmp_path):
    trained_run = trained_runs["bpe"]  # a byte-level BPE: it encodes a line break
    loaded = load_checkpoint(trained_run / "run")
    typed = attention(attention_cfg(trained_run, tmp_path, r'prompt="Tom had\na dog"'))
    assert typed.token_ids == loaded.tokenizer.encode("Tom had\na dog")
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("Tom had\na dog\n")
    read = attention(attention_cfg(trained_run, tmp_path, f"prompt_file={prompt_file}"))
    assert read.token_ids == typed.token_ids


def test_trace_prints_every_shape_for_the_prompt(trained_run, tmp_path, capsys):
    attention(attention_cfg(trained_run, tmp_path, "prompt=Lily", "trace=true", "layer=1",
                            "head=0"))  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("B=1 sequence, T=4 tokens, C=64 channels, H=2 heads of D=32")
    weights = next(line for line in printed if line.startswith("blocks.0.attn.probe.weights"))
    assert "(1, 2, 4, 4)" in weights
    assert printed[-1].startswith("logits")


ERRORS = [
    (["layer=2"], "error: layer must be between 0 and 1 (the model has 2 layers, counted from 0), "
                  "not 2."),
    (["head=5"], "error: head must be between 0 and 1 (the model has 2 heads, counted from 0), "
                 "not 5."),
    (["prompt=null"], "error: prompt is not set to a text"),
    (["prompt=[Tom,Lily]"], "error: prompt=[Tom, Lily] is not allowed: prompt takes a text or "
                            "null (the text to look at, one prompt at a time)"),
    (["prompt_file=missing.txt"], "error: Give prompt= or prompt_file=, not both."),
    (["prompt=null", "prompt_file=missing.txt"], "error: Cannot read prompt_file missing.txt"),
    (['prompt="Zürich"'], "error: The character tokenizer never saw 'Z', 'ü'"),
    (["ckpt_path=null"], "error: ckpt_path is not set"),
]  # fmt: skip


@pytest.mark.parametrize("overrides, message", ERRORS, ids=[o[0] for o, _ in ERRORS])
def test_bad_input_is_one_clear_line_and_exit_status_1(
    trained_run, tmp_path, capsys, overrides, message
):
    cfg = attention_cfg(trained_run, tmp_path, "prompt=Tom", *overrides)
    with pytest.raises(SystemExit) as exit_info:
        run(attention, cfg)
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert not (tmp_path / "attention.png").exists()


@pytest.mark.slow
def test_the_script_writes_into_its_run_folder_and_prints_the_path(trained_run, tmp_path):
    result = run_script(
        "attention", f"ckpt_path={trained_run / 'run'}", "prompt=Once upon a time", "layer=0",
        "head=1", f"paths.log_dir={tmp_path / 'outputs'}", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (png,) = (tmp_path / "outputs" / "attention" / "runs").glob("*/attention.png")
    assert f"Attention map: {png}" in result.stderr  # log lines go to stderr
