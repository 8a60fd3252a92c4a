"""The ablation experiments: from the GPT-2 recipe up and from the modern recipe down, every switch
on which the two recipes differ is flipped alone, one run each, on both datasets."""

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR, compose_train

GPT2, MODERN = (
    OmegaConf.to_container(OmegaConf.load(CONF_DIR / "arch" / f"{name}.yaml"))
    for name in ("gpt2", "modern")
)
DIFFERING = sorted(key for key in GPT2 if GPT2[key] != MODERN[key] and key != "bias")


def flips(experiment: str) -> list[str]:
    config = OmegaConf.load(CONF_DIR / "experiment" / f"{experiment}.yaml")
    return config.hydra.sweeper.params["+ablation"].split(",")


def model_of(tmp_path, *overrides) -> dict:
    cfg = compose_train(tmp_path, "data.path=corpus.txt", "hydra.mode=RUN", *overrides)
    return OmegaConf.to_container(cfg.model, resolve=True)


@pytest.mark.parametrize(
    "experiment, start, goal",
    [
        ("ablation_shakespeare_up", GPT2, MODERN),
        ("ablation_shakespeare_down", MODERN, GPT2),
        ("ablation_tinystories_up", GPT2, MODERN),
        # experiment=tinystories_modern has no soft-cap (1.5 × a step at 4,096 tokens): none to
        # switch off.
        ("ablation_tinystories_down", {**MODERN, "logit_softcap": None}, GPT2),
    ],
)
def test_each_flip_changes_one_switch_and_every_differing_switch_is_flipped(
    tmp_path, experiment, start, goal
):
    names = flips(experiment)
    assert names[0] == "none" and len(set(names)) == len(names)
    base = model_of(tmp_path, f"experiment={experiment}", "+ablation=none")
    assert all(base[key] == start[key] for key in DIFFERING)
    flipped = {}
    for name in names[1:]:
        model = model_of(tmp_path, f"experiment={experiment}", f"+ablation={name}")
        (changed,) = [key for key in model if model[key] != base[key]]  # exactly one
        flipped.setdefault(changed, []).append(model[changed])
    # Every switch goes to the other recipe's value; the MLP also to SwiGLU, in neither recipe.
    to_flip = [key for key in DIFFERING if start[key] != goal[key]]
    assert {key: values[0] for key, values in flipped.items()} == {k: goal[k] for k in to_flip}
    assert flipped["mlp"] == [goal["mlp"], "swiglu"]


@pytest.mark.parametrize("direction", ["up", "down"])
def test_the_tinystories_ablation_trains_the_recipe_docs_recipes_measures(tmp_path, direction):
    experiment = f"experiment=ablation_tinystories_{direction}"
    cfg = compose_train(
        tmp_path, "data.path=stories/", "hydra.mode=RUN", experiment, "+ablation=none"
    )
    assert (cfg.data._target_, cfg.tokenizer.kind, cfg.tokenizer.vocab_size) == (
        "tinylm.data.TextDataModule", "bpe", 4096)  # fmt: skip
    assert (cfg.data.batch_size, cfg.trainer.max_steps, cfg.optimizer.warmup_steps) == (8, 300, 30)
    assert (cfg.model.n_layer, cfg.model.d_model, cfg.model.block_size) == (2, 128, 256)
    assert cfg.trainer.limit_val_batches == 1.0 and cfg.trainer.val_check_interval == 100
    expected = {"up": ("adamw", 1e-3), "down": ("muon", 0.02)}[direction]
    assert (cfg.optimizer.name, cfg.optimizer.lr) == expected
