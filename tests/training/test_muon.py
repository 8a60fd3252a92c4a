"""optimizer=muon: Muon on the blocks' matrices and AdamW on the rest, stepped as one optimizer
whose every update is the one torch's Muon or AdamW makes alone, and whose resume is exact."""

import io

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR, compose_train
from tinylm.errors import ConfigError
from tinylm.model import GPT, GPTConfig
from tinylm.training import fit
from tinylm.training.muon import (
    BatchedMuon,
    MuonWithAdamW,
    check_muon_fits_hardware,
    hidden_matrices,
)
from tinylm.training.optim import build_optimizer, build_scheduler, parameter_groups

MUON = {**OmegaConf.to_container(OmegaConf.load(CONF_DIR / "optimizer" / "muon.yaml")),
        "warmup_steps": 2, "adamw_weight_decay": 0.1, "weight_decay": 0.05}  # fmt: skip
STEPS = 6


def small_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, d_model=32, d_ff=64))


def batches(count: int) -> torch.Tensor:
    return torch.randint(0, 50, (count, 4, 16), generator=torch.Generator().manual_seed(1))


def train(model, optimizer, scheduler, xs) -> None:
    for x in xs:
        model(x).logsumexp(dim=-1).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()


def test_muon_takes_the_blocks_matrices_and_adamw_everything_else():
    model = small_gpt()
    optimizer = build_optimizer(model, MUON)
    assert isinstance(optimizer, MuonWithAdamW)
    names = {id(p): name for name, p in model.named_parameters()}
    muon = {names[id(p)] for group in optimizer.muon.param_groups for p in group["params"]}
    adamw = {names[id(p)] for group in optimizer.adamw.param_groups for p in group["params"]}
    assert muon == {f"blocks.{i}.{layer}.weight" for i in range(2)
                    for layer in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")}  # fmt: skip
    assert adamw == set(names.values()) - muon  # the embedding (tied head), norms, biases
    assert "tok_emb.weight" in adamw and "ln_f.weight" in adamw
    # The embeddings are decayed with AdamW's weight decay, norms and biases are not.
    decayed = {names[id(p)] for g in optimizer.adamw.param_groups if g["weight_decay"] == 0.1
               for p in g["params"]}  # fmt: skip
    assert decayed == {"tok_emb.weight", "pos_emb.weight"}


def test_each_parameters_update_is_the_one_muon_or_adamw_makes_alone():
    combined_model, reference_model = small_gpt(), small_gpt()
    combined = build_optimizer(combined_model, MUON)
    muon = torch.optim.Muon(
        hidden_matrices(reference_model), lr=MUON["lr"], weight_decay=MUON["weight_decay"],
        momentum=MUON["momentum"], nesterov=MUON["nesterov"], ns_steps=MUON["ns_steps"],
        adjust_lr_fn=MUON["adjust_lr_fn"],
    )  # fmt: skip
    matrices = {id(p) for p in hidden_matrices(reference_model)}
    adamw = torch.optim.AdamW(
        [{**g, "params": [p for p in g["params"] if id(p) not in matrices]}
         for g in parameter_groups(reference_model, MUON["adamw_weight_decay"])],
        lr=MUON["adamw_lr"], betas=tuple(MUON["adamw_betas"]), eps=MUON["adamw_eps"], fused=True,
    )  # fmt: skip
    schedules = [build_scheduler(o, MUON, total_steps=STEPS) for o in (combined, muon, adamw)]
    xs = batches(STEPS)
    train(combined_model, combined, schedules[0], xs)
    for x in xs:  # the two reference optimizers stepped one after the other
        reference_model(x).logsumexp(dim=-1).mean().backward()
        for optimizer, scheduler in zip((muon, adamw), schedules[1:], strict=True):
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
    trained = dict(combined_model.named_parameters())
    for name, parameter in reference_model.named_parameters():
        torch.testing.assert_close(trained[name], parameter, rtol=0, atol=0, msg=name)
        assert not torch.equal(parameter, dict(small_gpt().named_parameters())[name]), name
    # Both learning rates followed the one schedule, each from its own peak.
    lrs = [group["lr"] for group in combined.param_groups]
    ratio = schedules[0].get_last_lr()[0] / MUON["lr"]
    assert lrs[0] == pytest.approx(MUON["lr"] * ratio)
    assert lrs[-1] == pytest.approx(MUON["adamw_lr"] * ratio)


@pytest.mark.parametrize(
    "settings",
    [
        dict(weight_decay=0.0, nesterov=True, adjust_lr_fn="original"),
        dict(weight_decay=0.1, nesterov=False, adjust_lr_fn="match_rms_adamw"),
    ],
)
def test_the_batched_muon_step_is_torchs_muon_bit_for_bit(settings):
    # nanoGPT's Shakespeare matrices (qkv, attention and MLP projections of 4 layers): several
    # of each shape, tall, wide and square, orthogonalised together.
    shapes = [(384, 128), (128, 128), (512, 128), (128, 512)] * 4
    ours, theirs = ([torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(i)))
                     for i, s in enumerate(shapes)] for _ in range(2))  # fmt: skip
    batched = BatchedMuon(ours, lr=0.02, momentum=0.95, **settings)
    reference = torch.optim.Muon(theirs, lr=0.02, momentum=0.95, **settings)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        for mine, torchs in zip(ours, theirs, strict=True):
            mine.grad = torch.randn(mine.shape, generator=generator)
            torchs.grad = mine.grad.clone()
        batched.step()
        reference.step()
    for mine, torchs in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, torchs, rtol=0, atol=0)
        assert torch.equal(batched.state[mine]["momentum_buffer"],
                           reference.state[torchs]["momentum_buffer"])  # fmt: skip


def test_a_state_dict_saved_mid_run_and_loaded_continues_exactly():
    whole_model, resumed_model = small_gpt(), small_gpt()
    xs = batches(STEPS)
    whole = build_optimizer(whole_model, MUON)
    train(whole_model, whole, build_scheduler(whole, MUON, STEPS), xs)

    first = build_optimizer(resumed_model, MUON)
    first_schedule = build_scheduler(first, MUON, STEPS)
    train(resumed_model, first, first_schedule, xs[: STEPS // 2])
    saved = io.BytesIO()
    torch.save({"optimizer": first.state_dict(), "scheduler": first_schedule.state_dict()}, saved)
    saved.seek(0)
    state = torch.load(saved, weights_only=True)
    # A new optimizer and scheduler, as a resumed run builds them, then loads the checkpoint.
    second = build_optimizer(resumed_model, MUON)
    second_schedule = build_scheduler(second, MUON, STEPS)
    second.load_state_dict(state["optimizer"])
    second_schedule.load_state_dict(state["scheduler"])
    assert (
        second.muon.state is second.state
        and second.adamw.param_groups[0] is (second.param_groups[second.muon_group_count])
    )
    train(resumed_model, second, second_schedule, xs[STEPS // 2 :])
    trained = dict(whole_model.named_parameters())
    for name, parameter in resumed_model.named_parameters():
        torch.testing.assert_close(parameter, trained[name], rtol=0, atol=0, msg=name)


@pytest.mark.slow
def test_a_muon_run_stopped_and_resumed_from_its_checkpoint_ends_bit_exact(tmp_path, story_file):
    def train_20_steps(folder, *overrides):
        fit(compose_train(
            folder, "model=tiny", "data=text", "tokenizer=char", f"data.path={story_file}",
            "optimizer=muon", "optimizer.warmup_steps=4", "trainer.max_steps=20",
            "trainer.val_check_interval=10", "trainer.limit_val_batches=1", "logger=csv",
            "callbacks.progress_bar=null", "callbacks.generation_samples=null", *overrides,
        ))  # fmt: skip
        return torch.load(folder / "run" / "checkpoints" / "last.ckpt", weights_only=True)

    whole = train_20_steps(tmp_path / "whole")
    stopped = train_20_steps(
        tmp_path / "stopped", "+callbacks.stop.step=10",
        "+callbacks.stop._target_=tests.training.callbacks_for_tests.StopAtStep",
    )  # fmt: skip
    assert stopped["global_step"] == 10
    resumed = train_20_steps(
        tmp_path / "resumed",
        f"ckpt_path={tmp_path / 'stopped' / 'run' / 'checkpoints' / 'last.ckpt'}",
    )
    assert resumed["global_step"] == whole["global_step"] == 20
    momentum = [s["momentum_buffer"] for s in whole["optimizer_states"][0]["state"].values()
                if "momentum_buffer" in s]  # fmt: skip
    assert momentum, "Muon's momentum is in the checkpoint"
    for name, tensor in whole["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], tensor, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"adamw_lr": 0.0}, "optimizer.adamw_lr=0.0 .* takes a number > 0"),
        ({"adjust_lr_fn": "rms"}, "optimizer.adjust_lr_fn=rms .* one of original, match_rms"),
        ({"ns_steps": 0}, r"optimizer.ns_steps=0 .* takes a whole number in \[1, 99\]"),
        ({"adamw_betas": [0.9, 1.2]}, r"optimizer.adamw_betas=\[0.9, 1.2\] .* list of 2 num"),
        ({"momentum": 1.5}, r"optimizer.momentum=1.5 .* takes a number in \[0, 1\]"),
    ],
)
def test_muon_settings_it_cannot_use_are_one_sentence_naming_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        build_optimizer(small_gpt(), {**MUON, **change})


def test_a_torch_without_muon_is_one_sentence(monkeypatch):
    monkeypatch.delattr(torch.optim, "Muon")
    with pytest.raises(ConfigError, match=r"optimizer=muon needs torch.optim.Muon \(torch 2.9"):
        build_optimizer(small_gpt(), MUON)


def test_sharded_matrices_are_refused_and_ddp_is_not(tmp_path):
    fsdp = compose_train(tmp_path, "optimizer=muon", "hardware=fsdp").hardware
    with pytest.raises(
        ConfigError, match="optimizer=muon cannot run with a sharding strategy .*fsdp"
    ):
        check_muon_fits_hardware(OmegaConf.to_container(fsdp))
    with pytest.raises(
        ConfigError, match=r"optimizer=muon cannot run with a sharding strategy \(fsdp,"
    ):
        check_muon_fits_hardware({"strategy": "fsdp"})
    check_muon_fits_hardware(
        OmegaConf.to_container(compose_train(tmp_path, "hardware=ddp").hardware)
    )
