import pytest
import torch

from tinylm.errors import ConfigError
from tinylm.model import GPT, GPTConfig
from tinylm.training.optim import (
    WarmupCosine,
    build_optimizer,
    build_scheduler,
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


def test_scheduler_steps_the_optimizers_learning_rate():
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, ADAMW, fused=False)
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
    optimizer = build_optimizer(torch.nn.Linear(2, 2), config, fused=False)
    assert type(optimizer) is expected


@pytest.mark.parametrize(
    "change, message",
    [
        ({"name": "lion"}, "optimizer.name must be one of"),
        ({"lr": -0.1}, "optimizer.lr must be a positive number, not -0.1"),
        ({"lr": float("nan")}, "optimizer.lr must be a positive number"),
        ({"min_lr": 1.0}, r"optimizer.min_lr must lie between 0 and optimizer.lr \(0.001\)"),
        ({"weight_decay": -1}, "optimizer.weight_decay must be at least 0"),
        ({"eps": 0.0}, "optimizer.eps must be at least"),
        ({"warmup_steps": -5}, "optimizer.warmup_steps must be at least 0"),
        ({"betas": [0.9, 1.0]}, r"optimizer.betas must be two numbers in \[0, 1\)"),
        ({"betas": [0.9]}, "optimizer.betas must be two numbers"),
    ],
)
def test_settings_no_optimizer_can_use_are_one_sentence_naming_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        build_optimizer(torch.nn.Linear(2, 2), {**ADAMW, **change}, fused=False)


def test_a_schedule_needs_steps():
    optimizer = build_optimizer(torch.nn.Linear(2, 2), ADAMW, fused=False)
    with pytest.raises(ConfigError, match="max_steps"):
        build_scheduler(optimizer, ADAMW, total_steps=-1)
