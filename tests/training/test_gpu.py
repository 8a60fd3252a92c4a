"""The GPU path: bf16-mixed, fused AdamW, compiled by default, flash attention, MFU. Skipped
without a CUDA GPU; benchmarks/gpu_check.sh runs these and the GPU benchmarks in one go."""

import csv
import json
import math

import pytest
import torch
from lightning.fabric.utilities.throughput import get_available_flops

from tests.conftest import compose_train
from tinylm.checkpoint import load_checkpoint
from tinylm.model import GPT, GPTConfig
from tinylm.training import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_a_gpu_run_trains_in_bf16_compiled_with_fused_adamw(tmp_path, story_file):
    setup_file = tmp_path / "setup.json"
    result = fit(compose_train(
        tmp_path, "model=tiny", "data=text", "tokenizer=char", f"data.path={story_file}",
        "hardware=gpu", "logger=csv", "trainer.max_steps=200", "trainer.val_check_interval=100",
        "optimizer.lr=3e-3", "trainer.log_every_n_steps=10",
        "+callbacks.setup._target_=tests.training.callbacks_for_tests.RecordTrainingSetup",
        f"+callbacks.setup.path={setup_file}",
    ))  # fmt: skip
    setup = json.loads(setup_file.read_text())
    assert setup == {"precision": "bf16-mixed", "fused": True, "compiled": True, "device": "cuda"}
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    loaded = load_checkpoint(last, "cpu")  # plain names, read on a machine without the GPU
    assert result.final_val_loss < 0.6 * math.log(loaded.model.config.vocab_size)

    with open(tmp_path / "run" / "csv" / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["train/tokens_per_sec"]]
    peak = get_available_flops(torch.device("cuda"), torch.bfloat16)
    if peak is None:  # a GPU Lightning's table does not know: no MFU, and no error
        assert "train/mfu" not in rows[0] or not rows[-1]["train/mfu"]
    else:
        mfu = float(rows[-1]["train/mfu"])
        expected = loaded.model.flops_per_token() * float(rows[-1]["train/tokens_per_sec"]) / peak
        assert mfu == pytest.approx(expected, rel=1e-4) and 0 < mfu < 1


def test_training_attention_runs_on_the_flash_kernel():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = GPT(GPTConfig(vocab_size=256, block_size=128, n_layer=2, n_head=4, d_model=128))
    x = torch.randint(0, 256, (4, 128), device="cuda")
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION), torch.autocast("cuda", dtype=torch.bfloat16):
        model.cuda()(x).float().logsumexp(dim=-1).mean().backward()  # raises if flash cannot run
    assert model.tok_emb.weight.grad is not None
