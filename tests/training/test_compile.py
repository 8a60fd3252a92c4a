"""compile=true: a compiled run trains like an eager one, and its checkpoints are plain."""

import pytest
import torch

from tests.conftest import compose_config, compose_train
from tinylm.commands.generate import generate
from tinylm.errors import ConfigError
from tinylm.training import fit
from tinylm.training.compile import check_compile_setting, should_compile

# On the CPU, where eager and compiled losses agree to 1e-3; test_gpu.py compiles on CUDA.
QUICK_TINY_RUN = ("model=tiny", "data=text", "tokenizer=char", "logger=csv", "hardware=cpu",
                  "trainer.max_steps=30", "trainer.val_check_interval=1000",
                  "trainer.limit_val_batches=2", "optimizer.lr=3e-3",
                  "callbacks.generation_samples=null", "callbacks.progress_bar=null")  # fmt: skip


def test_auto_compiles_on_cuda_only():
    assert should_compile("auto", torch.device("cuda")) is True
    assert should_compile("auto", torch.device("cpu")) is False
    assert should_compile("auto", torch.device("mps")) is False
    assert should_compile(True, torch.device("cpu")) is True
    assert should_compile(False, torch.device("cuda")) is False


@pytest.mark.parametrize("setting", ["yes", 1, None])
def test_a_compile_setting_other_than_auto_true_false_is_refused(setting):
    with pytest.raises(ConfigError, match="compile must be auto, true or false"):
        check_compile_setting(setting)


@pytest.mark.slow
def test_a_compiled_run_trains_like_an_eager_one_and_saves_plain_names(tmp_path, story_file):
    data = f"data.path={story_file}"
    eager = fit(compose_train(tmp_path / "eager", *QUICK_TINY_RUN, data, "compile=false"))
    compiled = fit(compose_train(tmp_path / "compiled", *QUICK_TINY_RUN, data, "compile=true"))
    assert compiled.final_val_loss == pytest.approx(eager.final_val_loss, abs=1e-3)

    last = tmp_path / "compiled" / "run" / "checkpoints" / "last.ckpt"
    names = list(torch.load(last, weights_only=True)["state_dict"])
    assert "model.blocks.0.attn.qkv.weight" in names
    assert not [name for name in names if "_orig_mod" in name]

    # Resumed without compiling, for 10 more steps; then sampled from by generate.py's code.
    resumed = fit(compose_train(tmp_path / "resumed", *QUICK_TINY_RUN, data, "compile=false",
                                f"ckpt_path={last}", "trainer.max_steps=40"))  # fmt: skip
    assert resumed.steps == 40
    (record,) = generate(compose_config(
        "generate", f"ckpt_path={last}", f"paths.output_dir={tmp_path}", "prompt=Tom",
        "max_new_tokens=5", "stop_at_eos=false",
    ))  # fmt: skip
    assert len(record["tokens"]) == 5


@pytest.mark.slow
def test_a_model_that_cannot_be_compiled_is_one_sentence_saying_compile_false(
    tmp_path, story_file, monkeypatch
):
    # The commonest failure on a CPU: no working C++ compiler for inductor's kernels. Nothing
    # compiled earlier in this process may be reused: dynamo's and inductor's caches are off.
    monkeypatch.setattr("torch._inductor.config.cpp.cxx", ("/nonexistent/c++",))
    monkeypatch.setattr("torch._inductor.config.force_disable_caches", True)
    torch._dynamo.reset()
    cfg = compose_train(tmp_path, *QUICK_TINY_RUN, f"data.path={story_file}", "compile=true")
    try:
        with pytest.raises(ConfigError, match=r"set compile=false to train without compiling\.$"):
            fit(cfg)
    finally:
        torch._dynamo.reset()
