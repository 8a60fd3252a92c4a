"""Checkpoints during training: last.ckpt is the newest state."""

import csv

import torch

from tests.conftest import compose_train
from tinylm.training import fit

TINY_CHAR = ("model=tiny", "data=text", "tokenizer=char", "logger=csv",
             "callbacks.progress_bar=null")  # fmt: skip


def checkpoint(path):
    return torch.load(path, weights_only=True)


def val_losses(run):
    with open(run / "csv" / "metrics.csv") as handle:
        return {
            int(row["step"]) + 1: float(row["val/loss"])  # the CSV counts steps from 0
            for row in csv.DictReader(handle)
            if row["val/loss"]
        }


def test_last_ckpt_is_the_final_state_when_the_best_was_earlier(tmp_path, story_file):
    final = tmp_path / "final.pt"
    fit(compose_train(
        tmp_path, *TINY_CHAR, f"data.path={story_file}", "trainer.max_steps=30",
        "trainer.val_check_interval=10", "optimizer.lr=3e-3",
        "+callbacks.scramble._target_=tests.training.callbacks_for_tests.ScrambleWeightsAtStep",
        "+callbacks.scramble.step=11",
        "+callbacks.final._target_=tests.training.callbacks_for_tests.SaveFinalWeights",
        f"+callbacks.final.path={final}",
    ))  # fmt: skip
    folder = tmp_path / "run" / "checkpoints"
    losses = val_losses(tmp_path / "run")
    assert min(losses, key=losses.get) == 10  # the premise: the best validation came first

    (best,) = folder.glob("best-*.ckpt")
    assert best.name == f"best-step0000010-val{losses[10]:.4f}.ckpt"
    assert checkpoint(best)["global_step"] == 10
    last = checkpoint(folder / "last.ckpt")
    assert last["global_step"] == 30
    final_weights = torch.load(final, weights_only=True)
    for name, tensor in final_weights.items():
        torch.testing.assert_close(last["state_dict"][f"model.{name}"], tensor, rtol=0, atol=0)
    # Saved after the best: it knows which checkpoint is best, for a run resumed from it.
    (best_state,) = [
        state for key, state in last["callbacks"].items()
        if key.startswith("ModelCheckpoint{'monitor': 'val/loss'")
    ]  # fmt: skip
    assert best_state["best_model_path"] == str(best)
    assert sorted(p.name for p in folder.iterdir()) == [best.name, "last.ckpt"]
