import json

import pytest
import torch

from tinylm.errors import ConfigError
from tinylm.model import GPT, GPTConfig
from tinylm.training.optim import (
    WarmupCosine,
    build_optimizer,
    build_scheduler,
    capped_warmup_note,
    parameter_groups,
    warmup_steps_for,
)

ADAMW = {"name": "adamw", "lr": 1e-3, "weight_decay": 0.1, "betas": [0.9, 0.95], "eps": 1e-8,
         "warmup_steps": 10, "min_lr": 1e-4}  # fmt: skip


def test_schedule_warms_up_linearly_then_decays_along_a_cosine_to_min():
    schedule = WarmupCosine(warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(4) == pytest.approx(0.5)
    assert schedule(9) == pytest.approx(1.0)
    assert schedule(10) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.55)  # half-way down: min + (1 - min) / 2
    assert schedule(110) == pytest.approx(0.1) and schedule(500) == pytest.approx(0.1)
    values = [schedule(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_warmup_is_capped_at_a_tenth_of_a_short_run():
    assert warmup_steps_for(500, 300) == 30
    assert warmup_steps_for(500, 10_000) == 500
    assert warmup_steps_for(0, 100) == 0


def test_a_capped_warmup_is_said_in_one_line():
    assert capped_warmup_note(500, 300) == (
        "optimizer.warmup_steps=500 is more than a tenth of trainer.max_steps=300: warming up "
        "for 30 steps (10% of the run)."
    )
    assert capped_warmup_note(30, 300) is None


def test_scheduler_steps_the_optimizers_learning_rate():
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, ADAMW)
    scheduler = build_scheduler(optimizer, ADAMW, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-3)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_weight_decay_applies_to_matrices_only():
    model = GPT(GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, d_model=4, d_ff=8))
    decay, no_decay = parameter_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    total = sum(p.numel() for group in (decay, no_decay) for p in group["params"])
    assert total == model.num_parameters()


@pytest.mark.parametrize(
    "config, expected",
    [
        (ADAMW, torch.optim.AdamW),
        ({**ADAMW, "name": "adam", "weight_decay": 0.0}, torch.optim.Adam),
        ({"name": "sgd", "lr": 0.1, "weight_decay": 0.0, "momentum": 0.9, "nesterov": True,
          "warmup_steps": 0, "min_lr": 0.01}, torch.optim.SGD),
    ],
)  # fmt: skip
def test_each_optimizer_is_built(config, expected):
    optimizer = build_optimizer(torch.nn.Linear(2, 2), config)
    assert type(optimizer) is expected


@pytest.mark.parametrize(
    "change, message",
    [
        ({"name": "lion"}, "optimizer.name=lion is not one of adamw, adam, sgd"),
        ({"lr": -0.1}, "optimizer.lr=-0.1 is not allowed: optimizer.lr takes a number > 0"),
        ({"lr": float("nan")}, "optimizer.lr=nan is not allowed"),
        ({"min_lr": 1.0}, "optimizer.min_lr=1.0 is above optimizer.lr=0.001"),
        ({"weight_decay": -1}, "optimizer.weight_decay=-1 .* takes a number ≥ 0"),
        ({"eps": 0.0}, "optimizer.eps=0.0 .* takes a number > 0"),
        ({"warmup_steps": -5}, "optimizer.warmup_steps=-5 .* takes a whole number ≥ 0"),
        ({"betas": [0.9, 1.0]}, r"optimizer.betas=\[0.9, 1.0\] .* list of 2 numbers in \[0, 1\)"),
        ({"betas": [0.9]}, r"optimizer.betas=\[0.9\] .* list of 2 numbers"),
    ],
)
def test_settings_no_optimizer_can_use_are_one_sentence_naming_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        build_optimizer(torch.nn.Linear(2, 2), {**ADAMW, **change})


def test_a_schedule_needs_steps():
    optimizer = build_optimizer(torch.nn.Linear(2, 2), ADAMW)
    with pytest.raises(ConfigError, match="max_steps"):
        build_scheduler(optimizer, ADAMW, total_steps=-1)


def test_adamw_runs_fused_and_ends_where_the_foreach_implementation_does():
    config = {**ADAMW, "lr": 1e-2}
    fused_model, foreach_model = (small_gpt(), small_gpt())  # the same initial weights
    fused = build_optimizer(fused_model, config)
    foreach = torch.optim.AdamW(
        parameter_groups(foreach_model, config["weight_decay"]),
        lr=config["lr"], betas=tuple(config["betas"]), eps=config["eps"], foreach=True,
    )  # fmt: skip
    assert fused.defaults["fused"] and not foreach.defaults["fused"]
    batches = torch.randint(0, 50, (5, 4, 16), generator=torch.Generator().manual_seed(1))
    for model, optimizer in ((fused_model, fused), (foreach_model, foreach)):
        for x in batches:
            model(x).logsumexp(dim=-1).mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    # Within rounding: the biases of the keys get gradients of pure rounding noise (softmax is
    # blind to a shift shared by every key), which Adam scales up to steps of up to ~1e-5.
    trained = dict(fused_model.named_parameters())
    for name, parameter in foreach_model.named_parameters():
        torch.testing.assert_close(trained[name], parameter, rtol=1e-4, atol=1e-4, msg=name)
    assert not torch.allclose(trained["ln_f.weight"], small_gpt().ln_f.weight)  # it trained


def small_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, d_model=32, d_ff=64))


def test_bf16_mixed_clips_the_gradients_a_fused_adamw_applies(tmp_path, story_file):
    # Lightning's mixed precision refuses to clip for a fused optimizer; bf16 needs no scaler,
    # so the module clips itself (a GPU's default precision, tried here on the CPU).
    from tests.conftest import compose_train
    from tinylm.training import fit

    record = tmp_path / "norms.json"
    fit(compose_train(
        tmp_path, "model=tiny", "data=text", "tokenizer=char", f"data.path={story_file}",
        "hardware=cpu", "hardware.precision=bf16-mixed", "trainer.gradient_clip_val=0.05",
        "trainer.max_steps=3", "trainer.limit_val_batches=1", "logger=csv",
        "callbacks.generation_samples=null",
        "+callbacks.norms._target_=tests.training.callbacks_for_tests.RecordGradientNorms",
        f"+callbacks.norms.path={record}",
    ))  # fmt: skip
    recorded = json.loads(record.read_text())
    assert recorded["fused"] is True
    assert len(recorded["norms"]) == 3
    assert all(norm <= 0.05 * 1.001 for norm in recorded["norms"])


def test_build_optimizer_keeps_torchs_default_kernels_when_fused_is_off():
    model = GPT(GPTConfig(vocab_size=32, block_size=8, n_layer=1, n_head=2, d_model=16))
    assert build_optimizer(model, ADAMW).defaults["fused"] is True
    assert not build_optimizer(model, ADAMW, fused=False).defaults["fused"]
