"""scripts/export.py: trained tinylm models, read back by 🤗 transformers, give tinylm's tokens,
logits and greedy text."""

import json
import logging

import pytest
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel

from tests.conftest import compose_config
from tinylm.checkpoint import load_checkpoint
from tinylm.commands.export import export
from tinylm.errors import ConfigError, TokenizerError
from tinylm.generation import GenerationSettings, generate


def run_folder(kind, trained_run, trained_runs):
    return trained_run if kind == "char" else trained_runs[kind]


def first_story(folder) -> str:
    return (folder / "stories.txt").read_text().split("\n<|endoftext|>\n")[0]


@pytest.mark.parametrize(
    "kind, activation", [("char", "gelu"), ("bpe", "gelu"), ("gpt2", "gelu_new")]
)
def test_an_exported_model_gives_tinylm_tokens_logits_and_greedy_text(
    kind, activation, trained_run, trained_runs, tmp_path
):
    folder = run_folder(kind, trained_run, trained_runs)
    output = tmp_path / "hf"
    cfg = compose_config("export", f"ckpt_path={folder / 'run'}", f"output_dir={output}",
                         f"paths.output_dir={tmp_path / 'log'}")  # fmt: skip
    assert export(cfg) == str(output)
    loaded = load_checkpoint(folder / "run")
    model, tokenizer = loaded.model, loaded.tokenizer

    config = json.loads((output / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["activation_function"] == activation
    assert config["vocab_size"] == tokenizer.vocab_size  # the embedding's padding stays behind
    assert config["n_positions"] == model.config.block_size
    assert config["eos_token_id"] == tokenizer.eos_id
    assert (output / "model.safetensors").is_file() and not list(output.glob("*.bin"))

    text = first_story(folder)
    hf_tokenizer = AutoTokenizer.from_pretrained(output)
    ids = tokenizer.encode(text)
    assert hf_tokenizer(text)["input_ids"] == ids
    assert hf_tokenizer.decode(ids) == text

    hf_model = GPT2LMHeadModel.from_pretrained(output).eval()
    window = torch.tensor([ids[: model.config.block_size]])
    with torch.no_grad():
        torch.testing.assert_close(hf_model(window).logits, model(window), rtol=0, atol=1e-4)

    prompt = ids[:5]
    greedy = GenerationSettings(strategy="greedy", max_new_tokens=20)
    (completion,) = generate(model, prompt, greedy, tokenizer.eos_id)
    hf_tokens = hf_model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=20)
    hf_new = hf_tokens[0, len(prompt) :].tolist()
    if completion.finish_reason == "eos":  # transformers keeps the end-of-text token
        assert hf_new == [*completion.tokens, tokenizer.eos_id]
    else:
        assert hf_new == completion.tokens
    assert hf_tokenizer.decode(hf_new, skip_special_tokens=True) == tokenizer.decode(
        completion.tokens
    )


def test_export_never_writes_into_a_folder_that_holds_files(trained_run, tmp_path):
    output = tmp_path / "taken"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    cfg = compose_config("export", f"ckpt_path={trained_run / 'run'}", f"output_dir={output}",
                         f"paths.output_dir={tmp_path / 'log'}")  # fmt: skip
    with pytest.raises(ConfigError, match="already exists and is not an empty folder"):
        export(cfg)
    assert [p.name for p in output.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_needs_an_output_dir(trained_run, tmp_path):
    cfg = compose_config("export", f"ckpt_path={trained_run / 'run'}",
                         f"paths.output_dir={tmp_path}")  # fmt: skip
    with pytest.raises(ConfigError, match="output_dir is not set"):
        export(cfg)


def test_an_exported_char_model_says_what_its_vocabulary_cannot_encode(
    trained_run, trained_runs, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    output = tmp_path / "hf"
    cfg = compose_config("export", f"ckpt_path={trained_run / 'run'}", f"output_dir={output}",
                         f"paths.output_dir={tmp_path / 'log'}")  # fmt: skip
    export(cfg)
    assert {path.name: path.stat().st_mode & 0o777 for path in output.iterdir()} == {
        name: 0o644
        for name in ("README.md", "config.json", "generation_config.json", "model.safetensors",
                     "tokenizer.json", "tokenizer_config.json")
    }  # fmt: skip
    chars = len(load_checkpoint(trained_run / "run").tokenizer.chars)
    note = f"Its tokenizer is a vocabulary of {chars} characters and end-of-text: 🤗's"
    assert note in (output / "README.md").read_text() and note in caplog.text
    assert "--tasks wikitext" in caplog.text and "hellaswag" not in caplog.text

    # Read back by tinylm, it is the char tokenizer again: it refuses what it cannot encode.
    read_back = load_checkpoint(output).tokenizer
    assert read_back.state_dict() == load_checkpoint(trained_run / "run").tokenizer.state_dict()
    with pytest.raises(TokenizerError, match="never saw"):
        read_back.encode("☃")

    caplog.clear()
    gpt2 = tmp_path / "gpt2"
    source = trained_runs["gpt2"] / "run"
    export(compose_config("export", f"ckpt_path={source}", f"output_dir={gpt2}",
                          f"paths.output_dir={tmp_path / 'log'}"))  # fmt: skip
    assert "--tasks hellaswag" in caplog.text and not (gpt2 / "README.md").exists()
