"""Several devices: the global batch, and DDP on two CPU processes against one process."""

import csv

import pytest
import torch

from tests.conftest import compose_train, run_train_script
from tinylm.errors import ConfigError
from tinylm.model import GPT, GPTConfig
from tinylm.training import fit
from tinylm.training.hardware import accumulation_for_global_batch
from tinylm.training.optim import parameter_groups


@pytest.mark.parametrize(
    "global_batch, micro_batch, processes, expected",
    [(64, 16, 1, 4), (64, 16, 4, 1), (64, 8, 2, 4), (512, 16, 16, 2), (16, 16, 1, 1)],
)
def test_accumulation_keeps_the_global_batch_whatever_the_hardware(
    global_batch, micro_batch, processes, expected
):
    accumulation = accumulation_for_global_batch(global_batch, micro_batch, processes, 1)
    assert accumulation == expected
    assert micro_batch * processes * accumulation == global_batch


@pytest.mark.parametrize(
    "global_batch, micro_batch, processes", [(48, 16, 2), (8, 16, 1), (0, 4, 1)]
)
def test_a_global_batch_the_hardware_cannot_divide_is_a_clear_error(
    global_batch, micro_batch, processes
):
    per_pass = micro_batch * processes
    with pytest.raises(ConfigError, match=rf"multiple of .* = {per_pass}; change one of them"):
        accumulation_for_global_batch(global_batch, micro_batch, processes, 1)


def test_a_global_batch_and_an_explicit_accumulation_are_refused_together():
    with pytest.raises(ConfigError, match="not both"):
        accumulation_for_global_batch(64, 16, 1, accumulate_grad_batches=2)


def test_training_derives_its_accumulation_from_the_global_batch(tmp_path, story_file):
    cfg = compose_train(
        tmp_path, "model=tiny", "tokenizer=char", "data=text", f"data.path={story_file}",
        "data.batch_size=4", "data.global_batch_size=12", "trainer.max_steps=4",
        "trainer.val_check_interval=2",
        "+callbacks.record._target_=tests.training.callbacks_for_tests.RecordBatches",
        f"+callbacks.record.folder={tmp_path / 'batches'}",
    )  # fmt: skip
    fit(cfg)
    micro_batches = torch.load(tmp_path / "batches" / "rank0.pt")
    assert micro_batches.shape[:2] == (4 * 3, 4)  # 4 steps × 3 micro-batches of 4 = 12 each
    with open(tmp_path / "run" / "csv" / "metrics.csv") as handle:
        validated = [int(row["step"]) + 1 for row in csv.DictReader(handle) if row["val/loss"]]
    assert validated == [2, 4]  # every 2 optimizer steps, not every 2 micro-batches


def test_weight_decay_finds_the_matrices_after_fsdp_has_flattened_them():
    model = GPT(GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, d_model=4, d_ff=8))
    matrices = {id(p) for p in model.parameters() if p.dim() == 2}
    with torch.no_grad():  # what FSDP's use_orig_params shows the optimizer: flat shard views
        for parameter in model.parameters():
            parameter.data = parameter.data.flatten()
    decay, no_decay = parameter_groups(model, weight_decay=0.1)
    assert {id(p) for p in decay["params"]} == matrices
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def checkpoint_weights(folder):
    return torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def val_losses(folder):
    with open(folder / "csv" / "metrics.csv") as handle:
        return [float(row["val/loss"]) for row in csv.DictReader(handle) if row["val/loss"]]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_like_one_process_with_the_same_global_batch(
    tmp_path, story_file
):
    steps = 6
    common = (
        "model=tiny", "tokenizer=char", "data=text", f"data.path={story_file}",
        "data.batch_size=4", "data.global_batch_size=8", f"trainer.max_steps={steps}",
        "trainer.val_check_interval=3", "optimizer.warmup_steps=0",
        "+callbacks.record._target_=tests.training.callbacks_for_tests.RecordBatches",
    )  # fmt: skip
    # One process: accumulation 2. It validates on its first 4 batches of 4 windows, the same
    # 16 windows that two processes see with 2 batches each (Lightning deals them out in turn).
    single = tmp_path / "single"
    fit(compose_train(single, *common, "hardware=cpu", "trainer.limit_val_batches=4",
                        f"+callbacks.record.folder={single / 'batches'}"))  # fmt: skip
    # Two processes started by Lightning, gloo between them: accumulation 1.
    result = run_train_script(
        *common, "hardware=ddp", "hardware.accelerator=cpu", "hardware.devices=2",
        "trainer.limit_val_batches=2", f"+callbacks.record.folder={tmp_path / 'ddp_batches'}",
        f"paths.log_dir={tmp_path / 'ddp'}", f"paths.cache_dir={tmp_path / 'ddp_cache'}",
        "callbacks.progress_bar=null", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    tokens = "Tokens per optimizer step: 1,024 = batch 4 × context 128 × accumulation 1 × devices 2"
    assert tokens in output
    assert output.count("Tokenizing into") == 1  # the cache is prepared once

    # Each rank trains on its own half of every global batch: together, one process's batch.
    one = torch.load(single / "batches" / "rank0.pt")  # (steps × 2, 4, block)
    rank0 = torch.load(tmp_path / "ddp_batches" / "rank0.pt")  # (steps, 4, block)
    rank1 = torch.load(tmp_path / "ddp_batches" / "rank1.pt")
    assert rank0.shape == rank1.shape == (steps, 4, 128)
    torch.testing.assert_close(rank0, one[0::2], rtol=0, atol=0)
    torch.testing.assert_close(rank1, one[1::2], rtol=0, atol=0)
    for step in range(steps):
        assert not set(map(tuple, rank0[step].tolist())) & set(map(tuple, rank1[step].tolist()))

    # One run folder, written once: one set of checkpoints, metrics and results.
    (run,) = (tmp_path / "ddp" / "train" / "runs").iterdir()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        f"best-step{steps:07d}-val{val_losses(run)[-1]:.4f}.ckpt", "last.ckpt"
    ]  # fmt: skip
    assert len(val_losses(run)) == 2  # one row per validation, not one per rank
    assert len(list(run.rglob("result.json"))) == 1 and len(list(run.rglob("config.yaml"))) == 1

    # The same batches and averaged gradients: the same weights and loss after k steps.
    single_run, ddp_run = checkpoint_weights(single / "run"), checkpoint_weights(run)
    for name in single_run:
        torch.testing.assert_close(ddp_run[name], single_run[name], rtol=1e-4, atol=1e-5, msg=name)
    assert val_losses(run) == pytest.approx(val_losses(single / "run"), abs=1e-5)
