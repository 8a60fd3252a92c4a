"""Loading checkpoints: run folders, and every way a file can fail to be a tinylm checkpoint."""

import os
import pickle
import shutil

import pytest
import torch
import torch.nn.functional as F

from tinylm.checkpoint import check_checkpoint_fits, load_checkpoint, resolve_checkpoint_path
from tinylm.errors import CheckpointError
from tinylm.model import GPT, GPTConfig


def touch(path):
    """A file shaped like a checkpoint (torch.save's zip archive): enough to choose among."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": 0}, path)
    return path


def test_a_run_folder_gives_its_best_checkpoint(tmp_path):
    touch(tmp_path / "checkpoints" / "last.ckpt")
    touch(tmp_path / "checkpoints" / "best-step0000300-val2.7367.ckpt")
    best = touch(tmp_path / "checkpoints" / "best-step0000200-val2.5000.ckpt")
    assert resolve_checkpoint_path(tmp_path) == best
    assert resolve_checkpoint_path(tmp_path / "checkpoints") == best


def test_a_run_folder_without_a_best_checkpoint_gives_last(tmp_path):
    last = touch(tmp_path / "checkpoints" / "last.ckpt")
    assert resolve_checkpoint_path(str(tmp_path)) == last


@pytest.mark.parametrize(
    "where, message",
    [(None, "ckpt_path is not set"),
     ("missing.ckpt", "No checkpoint at"),
     ("empty_folder", "holds no best-\\*.ckpt or last.ckpt")],
)  # fmt: skip
def test_no_checkpoint_is_one_clear_error(tmp_path, where, message):
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(CheckpointError, match=message):
        resolve_checkpoint_path(tmp_path / where if where else None)


def test_a_trained_checkpoint_loads_its_model_and_tokenizer(trained_run):
    loaded = load_checkpoint(trained_run / "run")
    assert loaded.path.name.startswith("best-")
    assert loaded.global_step == 200
    assert loaded.model.config.d_model == 64 and not loaded.model.training
    assert loaded.tokenizer.kind == "char"
    assert loaded.tokenizer.decode(loaded.tokenizer.encode("Once upon")) == "Once upon"


class CodeThatRunsWhenUnpickled:
    """Unpickling calls exec(...), which creates `marker`: what a malicious file would do."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "malicious.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": CodeThatRunsWhenUnpickled(marker)}, path)
    # The file is real: an unguarded load runs its code.
    torch.load(path, weights_only=False)
    assert marker.read_text() == "ran"
    marker.unlink()

    with pytest.raises(CheckpointError, match="could run code; tinylm refuses to load it"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"these are not weights\n", os.urandom(4096), pickle.dumps({"state_dict": {}}), b"PK\x03\x04"],
    ids=["text", "random bytes", "plain pickle", "zip signature only"],
)  # fmt: skip
def test_a_file_that_is_not_a_checkpoint_is_called_so(tmp_path, content):
    path = tmp_path / "notes.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(str(path))
    assert "not a checkpoint" in message or "is incomplete" in message
    assert "could run code" not in message


@pytest.mark.parametrize("kept", [0.0, 0.5, 0.99])
def test_a_truncated_checkpoint_is_called_incomplete(trained_run, tmp_path, kept):
    whole = (trained_run / "run" / "checkpoints" / "last.ckpt").read_bytes()
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(whole[: int(len(whole) * kept)])
    expected = "is empty" if kept == 0 else "is incomplete: it ends before the archive's directory"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)


def test_a_run_folder_passes_over_a_damaged_best_checkpoint_for_a_readable_last(
    trained_run, tmp_path, caplog
):
    shutil.copytree(trained_run / "run" / "checkpoints", tmp_path / "checkpoints")
    (best,) = (tmp_path / "checkpoints").glob("best-*.ckpt")
    best.write_bytes(best.read_bytes()[:1000])  # a save cut short, under the best's name
    assert load_checkpoint(tmp_path).path == tmp_path / "checkpoints" / "last.ckpt"
    assert f"Passing over {best.name}, which is incomplete" in caplog.text

    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"holds no readable checkpoint: best-.*; last.ckpt"):
        resolve_checkpoint_path(tmp_path)


def test_a_plain_state_dict_is_not_a_tinylm_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1)).state_dict(), path)
    with pytest.raises(CheckpointError, match="is not a tinylm checkpoint"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config_are_refused(trained_run, tmp_path):
    path = tmp_path / "edited.ckpt"
    shutil.copy(trained_run / "run" / "checkpoints" / "last.ckpt", path)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["model_config"]["n_layer"] = 3
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="weights do not match the model config"):
        load_checkpoint(path)


def test_a_checkpoint_from_before_a_model_setting_existed_still_fits(trained_run, tmp_path):
    # Checkpoints written before model.gelu existed lack it: they were trained with the default.
    path = tmp_path / "older.ckpt"
    shutil.copy(trained_run / "run" / "checkpoints" / "last.ckpt", path)
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["hyper_parameters"]["model_config"]["gelu"]
    torch.save(checkpoint, path)
    config = load_checkpoint(path).model.config.to_dict()
    # dropout and the attention implementation are the run's to change; the weights do not fix them
    check_checkpoint_fits(path, {**config, "dropout": 0.3, "attention": "manual"})
    with pytest.raises(CheckpointError, match="the checkpoint has gelu exact, this run tanh"):
        check_checkpoint_fits(path, {**config, "gelu": "tanh"})


def gpt2_reference_logits(weights: dict, config: GPTConfig, idx: torch.Tensor) -> torch.Tensor:
    """GPT-2's forward written out from the weights (learned positions, LayerNorm, exact GELU,
    tied head): what every checkpoint written before the model's switches computes."""
    C, H = config.d_model, config.n_head

    def layer_norm(x, name):
        return F.layer_norm(x, (C,), weights[f"{name}.weight"], weights.get(f"{name}.bias"))

    def linear(x, name):
        return F.linear(x, weights[f"{name}.weight"], weights.get(f"{name}.bias"))

    T = idx.size(1)
    x = weights["tok_emb.weight"][idx] + weights["pos_emb.weight"][:T]
    for i in range(config.n_layer):
        q, k, v = linear(layer_norm(x, f"blocks.{i}.ln_1"), f"blocks.{i}.attn.qkv").split(C, -1)
        q, k, v = (t.unflatten(-1, (H, C // H)).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / (C // H) ** 0.5
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        heads = (scores.softmax(-1) @ v).transpose(1, 2).flatten(2)
        x = x + linear(heads, f"blocks.{i}.attn.proj")
        hidden = F.gelu(linear(layer_norm(x, f"blocks.{i}.ln_2"), f"blocks.{i}.mlp.fc"))
        x = x + linear(hidden, f"blocks.{i}.mlp.proj")
    return (layer_norm(x, "ln_f") @ weights["tok_emb.weight"].T)[..., : config.vocab_size]


def test_a_checkpoint_from_before_the_switches_loads_and_computes_as_gpt2(trained_run, tmp_path):
    path = tmp_path / "older.ckpt"
    shutil.copy(trained_run / "run" / "checkpoints" / "last.ckpt", path)
    checkpoint = torch.load(path, weights_only=True)
    old_fields = ("vocab_size", "block_size", "n_layer", "n_head", "d_model", "d_ff", "dropout",
                  "bias", "pos_encoding", "attention")  # fmt: skip
    model_config = checkpoint["hyper_parameters"]["model_config"]
    checkpoint["hyper_parameters"]["model_config"] = {
        name: model_config[name] for name in old_fields
    }
    torch.save(checkpoint, path)
    model = load_checkpoint(path).model
    idx = torch.randint(
        0, model.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        expected = gpt2_reference_logits(model.state_dict(), model.config, idx)
        torch.testing.assert_close(model(idx), expected, rtol=1e-5, atol=1e-5)
