"""init_from: a round trip tinylm -> 🤗 export -> init_from keeps every weight, and command-line
settings that contradict the source are named."""

import shutil

import pytest
import torch

from tests.conftest import compose_train
from tinylm.checkpoint import load_checkpoint
from tinylm.interop.export import export_to_transformers
from tinylm.model import GPT, GPTConfig
from tinylm.training import fit
from tinylm.training.init_from import contradictions, starting_point


@pytest.mark.parametrize("kind", ["char", "bpe", "gpt2"])
def test_a_round_trip_through_an_export_keeps_every_weight_bit_exact(
    kind, trained_run, trained_runs, tmp_path
):
    folder = trained_run if kind == "char" else trained_runs[kind]
    original = load_checkpoint(folder / "run")
    export_to_transformers(original.model, original.tokenizer, tmp_path / "hf")

    # What fit() does with init_from: the source's architecture, a new GPT, its weights copied in.
    cfg = compose_train(tmp_path, f"init_from={tmp_path / 'hf'}")
    start = starting_point(cfg, command_line=[])
    model = GPT(GPTConfig(vocab_size=start.vocab_size, **cfg.model))
    start.copy_weights_into(model)

    before, after = original.model.state_dict(), model.state_dict()
    vocab = original.model.config.vocab_size
    for name, weight in before.items():
        if name in ("tok_emb.weight", "lm_head.weight"):
            assert torch.equal(after[name][:vocab], weight[:vocab])
            assert after[name][vocab:].eq(0).all()  # padding, which never reaches the logits
        else:
            assert torch.equal(after[name], weight), name
    if original.model.config.pos_encoding == "sinusoidal":  # written as the table it equals
        assert torch.equal(after["pos_emb.weight"], original.model.pos_table)
    else:
        assert set(after) == set(before)
    architecture = ("n_layer", "n_head", "d_model", "d_ff", "block_size", "bias", "gelu")
    for field in architecture:
        assert getattr(model.config, field) == getattr(original.model.config, field)
    # The tokenizer comes back with the same ids; GPT-2's comes back as tiktoken's.
    text = (folder / "stories.txt").read_text().split("\n<|endoftext|>\n")[0]
    assert start.tokenizer.encode(text) == original.tokenizer.encode(text)
    if kind == "gpt2":
        assert start.tokenizer.state_dict() == original.tokenizer.state_dict()


def test_a_tinylm_run_folder_as_init_from_gives_its_weights_and_tokenizer(trained_run, tmp_path):
    original = load_checkpoint(trained_run / "run")
    cfg = compose_train(tmp_path, f"init_from={trained_run / 'run'}", "model=small")
    start = starting_point(cfg, command_line=[])
    assert cfg.model.n_layer == original.model.config.n_layer
    assert cfg.model.d_model == original.model.config.d_model  # model=small's 128 is replaced
    model = GPT(GPTConfig(vocab_size=start.vocab_size, **cfg.model))
    start.copy_weights_into(model)
    for name, weight in original.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], weight), name
    assert start.tokenizer.state_dict() == original.tokenizer.state_dict()


def test_only_command_line_settings_that_contradict_the_source_are_named(tmp_path):
    cfg = compose_train(tmp_path, "model=small", "model.dropout=0.2", "tokenizer=gpt2")
    architecture = {"block_size": 1024, "n_layer": 12, "n_head": 12, "d_model": 768, "d_ff": 3072,
                    "bias": True, "pos_encoding": "learned", "gelu": "tanh"}  # fmt: skip
    gpt2 = {"kind": "tiktoken", "vocab_size": 50257, "encoding": "gpt2"}
    found = contradictions(
        ["model=small", "model.dropout=0.2", "tokenizer=gpt2", "optimizer.lr=1e-4"],
        cfg, architecture, gpt2,
    )  # fmt: skip
    # model=small sets every field of the small model; dropout is not fixed by weights.
    assert found == [
        "model.block_size=256 where the source has 1024",
        "model.n_layer=2 where the source has 12",
        "model.n_head=4 where the source has 12",
        "model.d_model=128 where the source has 768",
        "model.d_ff=512 where the source has 3072",
        "model.gelu=exact where the source has tanh",
    ]
    assert contradictions(["model.bias=true", "tokenizer=gpt2"], cfg, architecture, gpt2) == []
    # arch=modern sets the switches of the model; the source is a GPT-2.
    modern = compose_train(tmp_path, "model=small", "arch=modern")
    assert contradictions(["arch=modern"], modern, architecture, gpt2) == [
        "model.bias=False where the source has True",
        "model.pos_encoding=rope where the source has learned",
    ]
    assert contradictions(["arch=gpt2"], cfg, architecture, gpt2) == []
    bpe = {"kind": "bpe", "vocab_size": 4096}
    assert contradictions(["tokenizer=gpt2"], cfg, architecture, bpe) == [
        "tokenizer.kind=tiktoken where the source has bpe"
    ]


@pytest.mark.slow
def test_a_fine_tuning_run_continues_from_its_checkpoint_without_its_source(trained_run, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(trained_run / "run", source)
    settings = ("data=text", f"data.path={trained_run / 'stories.txt'}", f"init_from={source}",
                "logger=csv", "trainer.val_check_interval=5", "trainer.limit_val_batches=1",
                "callbacks.generation_samples=null", "callbacks.progress_bar=null")  # fmt: skip
    fit(compose_train(tmp_path / "tuned", *settings, "trainer.max_steps=10"))
    shutil.rmtree(source)  # moved, deleted or offline since: the run's checkpoint is enough

    last = tmp_path / "tuned" / "run" / "checkpoints" / "last.ckpt"
    resumed = fit(compose_train(tmp_path / "resumed", *settings, "trainer.max_steps=15",
                                f"ckpt_path={last}"))  # fmt: skip
    assert resumed.steps == 15
    assert load_checkpoint(tmp_path / "resumed" / "run").model.config.n_layer == 2  # the source's
