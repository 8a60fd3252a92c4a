"""scripts/generate.py and the function behind it, on the session's trained checkpoint."""

import json

import pytest
import torch

from tests.conftest import compose_config, run_script
from tests.test_checkpoint import CodeThatRunsWhenUnpickled
from tinylm.commands import run
from tinylm.commands.generate import generate


def generate_cfg(trained_run, tmp_path, *overrides):
    return compose_config(
        "generate", f"ckpt_path={trained_run / 'run'}", f"paths.output_dir={tmp_path}", *overrides
    )


def test_a_single_sample_streams_and_is_recorded(trained_run, tmp_path, capsys):
    out = tmp_path / "samples" / "out.jsonl"
    cfg = generate_cfg(trained_run, tmp_path, "prompt=Once upon a time", "max_new_tokens=60",
                       "seed=5", f"output_file={out}")  # fmt: skip
    (record,) = generate(cfg)
    assert capsys.readouterr().out == "Once upon a time" + record["text"] + "\n"
    assert 0 < len(record["tokens"]) <= 60
    assert record["finish_reason"] in ("eos", "length")
    assert record["settings"]["strategy"] == "sample" and record["settings"]["seed"] == 5
    assert record["settings"]["checkpoint"].endswith(".ckpt")
    assert record["tokens_per_second"] > 0 and record["seconds"] > 0
    assert json.loads(out.read_text()) == record

    # The same seed gives the same text; the file keeps the first run's record.
    (again,) = generate(cfg)
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["text"] == again["text"] == record["text"]


def test_several_prompts_and_samples_are_printed_and_recorded(trained_run, tmp_path, capsys):
    cfg = generate_cfg(trained_run, tmp_path, "prompt=[Once upon a time,Tom had a]",
                       "num_samples=2", "max_new_tokens=30", "temperature=1.0")  # fmt: skip
    records = generate(cfg)
    assert [(r["prompt"], r["sample"]) for r in records] == [
        ("Once upon a time", 1), ("Once upon a time", 2), ("Tom had a", 1), ("Tom had a", 2),
    ]  # fmt: skip
    printed = capsys.readouterr().out
    for record in records:
        assert f"{record['prompt']}{record['text']}" in printed
    assert printed.count("--- sample 1/2 ---") == 2


def test_beam_search_returns_its_best_beams_best_first(trained_run, tmp_path):
    cfg = generate_cfg(trained_run, tmp_path, "prompt=Tom", "strategy=beam", "num_beams=4",
                       "num_samples=3", "max_new_tokens=40")  # fmt: skip
    records = generate(cfg)
    scores = [r["score"] for r in records]
    assert len(records) == 3 and scores == sorted(scores, reverse=True)
    assert len({tuple(r["tokens"]) for r in records}) == 3


def test_a_prompt_file_is_one_prompt_and_an_empty_prompt_starts_a_document(trained_run, tmp_path):
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("Once upon a time, Lily\n")
    cfg = generate_cfg(trained_run, tmp_path, f"prompt_file={prompt_file}", "max_new_tokens=5")
    assert generate(cfg)[0]["prompt"] == "Once upon a time, Lily"
    (unprompted,) = generate(generate_cfg(trained_run, tmp_path, "prompt="))
    assert unprompted["prompt"] == "" and unprompted["tokens"]


ERRORS = [
    (['prompt="Once upon a time in Zürich"'], "error: The character tokenizer never saw 'Z', 'ü'"),
    (["prompt=" + "a" * 129], "error: The prompt is 129 tokens long, more than the model's "
                              "context of 128 tokens; shorten it."),
    (["prompt=Tom", "prompt_file=prompt.txt"], "error: Give prompt= or prompt_file=, not both."),
    (["top_p=0"], "error: top_p=0 is not allowed: top_p takes a number in (0, 1]"),
    (["temperature=-1"], "error: temperature=-1 is not allowed: temperature takes a number ≥ 0"),
    (["num_beams=0"], "error: num_beams=0 is not allowed: num_beams takes a whole number ≥ 1"),
    (["ckpt_path=null"], "error: ckpt_path is not set"),
    (["device=tpu"], "error: device must be auto, cpu, cuda (or cuda:N) or mps, not 'tpu'."),
]  # fmt: skip


@pytest.mark.parametrize("overrides, message", ERRORS, ids=[m[7:30] for _, m in ERRORS])
def test_bad_input_is_one_clear_line_and_exit_status_1(
    trained_run, tmp_path, capsys, overrides, message
):
    cfg = generate_cfg(trained_run, tmp_path, *overrides)
    with pytest.raises(SystemExit) as exit_info:
        run(generate, cfg)
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert captured.out == ""  # nothing generated before the error


def run_generate_script(*args, cwd):
    return run_script("generate", *args, f"paths.log_dir={cwd / 'outputs'}", cwd=cwd, timeout=300)


def test_the_script_streams_the_text_alone_to_stdout_from_a_run_folder(trained_run, tmp_path):
    records = tmp_path / "records.jsonl"
    result = run_generate_script(
        f"ckpt_path={trained_run / 'run'}", "prompt=Once upon a time", "max_new_tokens=40",
        f"output_file={records}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in records.read_text().splitlines()]
    # `generate.py ... > story.txt` holds the story alone; what it says about itself is on stderr.
    assert result.stdout == f"Once upon a time{record['text']}\n"
    assert "Checkpoint: " in result.stderr and "best-step0000200" in result.stderr
    assert "new tokens in" in result.stderr


def test_the_script_refuses_missing_and_malicious_checkpoints(tmp_path):
    missing = run_generate_script(f"ckpt_path={tmp_path / 'nope.ckpt'}", cwd=tmp_path)
    assert missing.returncode == 1
    assert (
        missing.stderr.strip()
        == f"error: No checkpoint at {tmp_path / 'nope.ckpt'}; check ckpt_path."
    )

    marker = tmp_path / "code_ran"
    torch.save({"hyper_parameters": CodeThatRunsWhenUnpickled(marker)}, tmp_path / "evil.ckpt")
    malicious = run_generate_script(f"ckpt_path={tmp_path / 'evil.ckpt'}", cwd=tmp_path)
    assert malicious.returncode == 1
    assert "tinylm refuses to load it" in malicious.stderr
    assert "Traceback" not in malicious.stderr
    assert not marker.exists()
