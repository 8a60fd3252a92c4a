"""The ablation experiments: from the GPT-2 recipe up and from the modern recipe down, every switch
on which conf/arch/gpt2.yaml and modern.yaml differ is flipped alone, one run each."""

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR, compose_train

GPT2, MODERN = (OmegaConf.load(CONF_DIR / "arch" / f"{name}.yaml") for name in ("gpt2", "modern"))
DIFFERING = sorted(key for key in GPT2 if GPT2[key] != MODERN[key] and key != "bias")


def flips(direction: str) -> list[str]:
    experiment = OmegaConf.load(CONF_DIR / "experiment" / f"ablation_shakespeare_{direction}.yaml")
    return experiment.hydra.sweeper.params["+ablation"].split(",")


def model_of(tmp_path, *overrides) -> dict:
    cfg = compose_train(tmp_path, "data.path=corpus.txt", "hydra.mode=RUN", *overrides)
    return OmegaConf.to_container(cfg.model, resolve=True)


@pytest.mark.parametrize("direction, start, goal", [("up", GPT2, MODERN), ("down", MODERN, GPT2)])
def test_each_flip_changes_one_switch_and_every_differing_switch_is_flipped(
    tmp_path, direction, start, goal
):
    names = flips(direction)
    assert names[0] == "none" and len(set(names)) == len(names)
    base = model_of(tmp_path, f"experiment=ablation_shakespeare_{direction}", "+ablation=none")
    assert all(base[key] == start[key] for key in DIFFERING)
    flipped = {}
    for name in names[1:]:
        model = model_of(
            tmp_path, f"experiment=ablation_shakespeare_{direction}", f"+ablation={name}"
        )
        (changed,) = [key for key in model if model[key] != base[key]]  # exactly one
        flipped.setdefault(changed, []).append(model[changed])
    # Every switch goes to the other recipe's value; the MLP also to SwiGLU, in neither recipe.
    assert {key: values[0] for key, values in flipped.items()} == {k: goal[k] for k in DIFFERING}
    assert flipped["mlp"] == [goal["mlp"], "swiglu"]
