"""End to end: the real configs, the real Trainer, a tiny model on a corpus the test writes."""

import csv
import math
import re

import pytest
import torch

from tests.conftest import compose_train, run_train_script
from tinylm.model import GPT, GPTConfig
from tinylm.training import fit

TINY_CHAR = ("model=tiny", "data=text", "tokenizer=char", "logger=csv")


def run_folder_metrics(tmp_path):
    with open(tmp_path / "run" / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def final_weights(tmp_path):
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["state_dict"]


def test_a_tiny_model_learns_and_leaves_checkpoints_metrics_and_a_curve(tmp_path, story_file):
    cfg = compose_train(
        tmp_path, *TINY_CHAR, f"data.path={story_file}",
        "trainer.max_steps=300", "trainer.val_check_interval=100", "optimizer.lr=3e-3",
    )  # fmt: skip
    best = fit(cfg).best_val_loss

    run = tmp_path / "run"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    vocab_size = checkpoint["hyper_parameters"]["model_config"]["vocab_size"]
    assert best < 0.5 * math.log(vocab_size)  # far below chance (ln vocab ≈ 3.5 here)
    assert checkpoint["global_step"] == 300
    # The checkpoint describes itself: model shape, tokenizer, optimizer, data fingerprint.
    hparams = checkpoint["hyper_parameters"]
    assert hparams["model_config"]["d_model"] == 64
    assert hparams["tokenizer_state"]["kind"] == "char"
    assert hparams["optimizer"]["lr"] == 3e-3
    assert hparams["data_fingerprint"].startswith("text-")
    best_files = list((run / "checkpoints").glob("best-*.ckpt"))
    assert len(best_files) == 1
    assert torch.load(best_files[0], weights_only=True)["global_step"] == 300

    rows = run_folder_metrics(tmp_path)
    val = [float(r["val/loss"]) for r in rows if r["val/loss"]]
    assert len(val) == 3 and val[-1] == pytest.approx(best, abs=1e-4)
    assert val[0] > val[-1]
    logged = {key for row in rows for key, value in row.items() if value}
    assert {"train/loss", "train/lr", "train/tokens_per_sec", "val/ppl", "val/acc"} <= logged
    ppl = [float(r["val/ppl"]) for r in rows if r["val/ppl"]]
    assert ppl[-1] == pytest.approx(math.exp(val[-1]), rel=1e-4)
    assert (run / "loss_curve.png").stat().st_size > 10_000


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, story_file, capsys):
    common = (*TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=30",
              "trainer.val_check_interval=1000", "optimizer.warmup_steps=5")  # fmt: skip
    fit(compose_train(tmp_path / "whole", *common,
                        "callbacks.periodic_checkpoint.every_n_train_steps=10"))  # fmt: skip
    kept = sorted(p.name for p in (tmp_path / "whole" / "run" / "checkpoints").glob("step*"))
    assert kept == ["step0000010.ckpt", "step0000020.ckpt", "step0000030.ckpt"]

    stop = ("+callbacks.stop._target_=tests.training.callbacks_for_tests.StopAtStep",
            "+callbacks.stop.step=13")  # fmt: skip
    fit(compose_train(tmp_path / "first", *common, *stop))
    interrupted = tmp_path / "first" / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(interrupted, weights_only=True)["global_step"] == 13
    capsys.readouterr()
    fit(compose_train(tmp_path / "resumed", *common, f"ckpt_path={interrupted}"))
    # The progress bar counts from the step it resumes at towards max_steps (30), not "n/?".
    bars = [frame for frame in capsys.readouterr().out.split("\r") if frame.startswith("Epoch")]
    totals = [re.search(r"\| *(\d+)/(\S+) \[", frame).groups() for frame in bars]
    assert totals[0] == ("13", "30") and totals[-1] == ("30", "30")
    assert {total for _, total in totals} == {"30"}

    whole, resumed = final_weights(tmp_path / "whole"), final_weights(tmp_path / "resumed")
    assert whole.keys() == resumed.keys()
    for name in whole:
        torch.testing.assert_close(resumed[name], whole[name], rtol=0, atol=0, msg=name)


def test_gradient_accumulation_trains_like_the_larger_batch(tmp_path, story_file):
    common = (*TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=8",
              "trainer.val_check_interval=1000", "optimizer.warmup_steps=0")  # fmt: skip
    fit(compose_train(tmp_path / "big", *common, "data.batch_size=8"))
    fit(compose_train(tmp_path / "acc", *common, "data.batch_size=4",
                        "trainer.accumulate_grad_batches=2"))  # fmt: skip
    big, accumulated = final_weights(tmp_path / "big"), final_weights(tmp_path / "acc")
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], rtol=1e-4, atol=1e-5, msg=name)
    no_accumulation = tmp_path / "small"
    fit(compose_train(no_accumulation, *common, "data.batch_size=4"))
    assert not torch.allclose(
        final_weights(no_accumulation)["model.ln_f.weight"], big["model.ln_f.weight"]
    )


def first_update_norm(tmp_path, story_file, clip: str) -> float:
    initial = tmp_path / "initial.pt"
    fit(compose_train(
        tmp_path, *TINY_CHAR, f"data.path={story_file}", "optimizer=sgd", "optimizer.lr=1.0",
        "optimizer.warmup_steps=0", "trainer.max_steps=1", f"trainer.gradient_clip_val={clip}",
        "+callbacks.initial._target_=tests.training.callbacks_for_tests.SaveInitialWeights",
        f"+callbacks.initial.path={initial}",
    ))  # fmt: skip
    before = torch.load(initial, weights_only=True)
    before.pop("lm_head.weight")  # the tied embedding, already counted as tok_emb.weight
    after = {k.removeprefix("model."): v for k, v in final_weights(tmp_path).items()}
    return torch.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in before)).item()


def test_gradient_clipping_bounds_the_update(tmp_path, story_file):
    # SGD's first step moves the weights by lr × gradient: with lr 1 its norm is the gradient's.
    unclipped = first_update_norm(tmp_path / "free", story_file, clip="null")
    clipped = first_update_norm(tmp_path / "clipped", story_file, clip="0.01")
    assert unclipped > 0.1
    assert clipped == pytest.approx(0.01, rel=1e-3)


@pytest.mark.slow
def test_the_train_script_runs_the_documented_command(tmp_path, story_file):
    result = run_train_script(
        "model=tiny", "tokenizer=char", "data=text", f"data.path={story_file}",
        "trainer.max_steps=60", "trainer.val_check_interval=30", f"paths.log_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}", "callbacks.progress_bar=null",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "train" / "runs").iterdir()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "csv" / "metrics.csv").is_file() and (run / "loss_curve.png").is_file()
    assert f"Run folder: {run.resolve()}" in result.stderr
    assert "Tokens per optimizer step: 2,048" in result.stderr
    assert "val/loss: final" in result.stderr and "Best checkpoint:" in result.stderr


def test_a_missing_data_path_is_one_clear_error(tmp_path):
    result = run_train_script(
        "model=tiny", "data=text", f"data.path={tmp_path / 'nope.txt'}",
        f"paths.log_dir={tmp_path}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: data.path")
    assert "Traceback" not in result.stderr


def test_mfu_is_logged_where_the_device_peak_is_known(tmp_path, story_file, monkeypatch):
    # No CPU has a peak in Lightning's table; pretend this one does, at 1 TFLOP/s.
    monkeypatch.setattr("tinylm.training.callbacks.get_available_flops", lambda *_: 1e12)
    cfg = compose_train(tmp_path, *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=20",
                        "trainer.log_every_n_steps=5")  # fmt: skip
    fit(cfg)
    rows = [r for r in run_folder_metrics(tmp_path) if r["train/mfu"]]
    assert len(rows) == 4
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    model = GPT(GPTConfig(**checkpoint["hyper_parameters"]["model_config"]))
    for row in rows:
        expected = model.flops_per_token() * float(row["train/tokens_per_sec"]) / 1e12
        assert float(row["train/mfu"]) == pytest.approx(expected, rel=1e-5)


def test_no_mfu_without_a_known_peak(tmp_path, story_file):
    fit(compose_train(tmp_path, *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=10"))
    assert "train/mfu" not in run_folder_metrics(tmp_path)[0]
