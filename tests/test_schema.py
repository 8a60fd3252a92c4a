"""The settings schema: each key's kind, range and choices, unknown keys, nested groups, and the
checks of keys together, each refused in one sentence that names the key and the value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import pytest
from omegaconf import OmegaConf

from tinylm.errors import ConfigError
from tinylm.schema import check_settings, group, group_by, setting


@dataclass(kw_only=True)
class Inner:
    EXTRA_KEYS: ClassVar[bool] = True
    steps: int = setting(help="how many", low=1)


@dataclass(kw_only=True)
class Fast:
    name: Literal["fast"]
    rate: float = setting(help="how fast", low=0, high=1, high_open=True)


@dataclass(kw_only=True)
class Slow:
    name: Literal["slow"]


@dataclass(kw_only=True)
class Shape:
    width: int
    heads: int = setting(help="heads", low=1)
    size: int  # required, supplied by the caller

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ConfigError(f"shape.width ({self.width}) is not a multiple of shape.heads.")


@dataclass(kw_only=True)
class Settings:
    seed: int = setting(help="seeds everything", low=0)
    flag: bool = setting(help="on or off")
    mode: str = setting(help="which", choices=("a", "b"))
    pair: list[float] = setting(help="two numbers", low=0, length=2)
    label: str | None = setting(help="any text")
    note: str | None = setting(None, "optional")
    inner: dict = group(Inner)
    speed: dict = group_by("name", {"fast": Fast, "slow": Slow})
    shape: dict = group(Shape, supplied={"size": 1})


GOOD = {
    "seed": 1, "flag": True, "mode": "a", "pair": [0.5, 1], "label": 2024, "inner": {"steps": 3},
    "speed": {"name": "fast", "rate": 0.5}, "shape": {"width": 8, "heads": 2},
}  # fmt: skip


def with_change(key: str, value) -> dict:
    settings = OmegaConf.create(GOOD)
    OmegaConf.update(settings, key, value, force_add=True)
    return settings


def test_good_settings_come_back_as_plain_python():
    checked = check_settings(OmegaConf.create(GOOD), Settings)
    assert checked == {**GOOD, "shape": {"width": 8, "heads": 2, "size": 1}}


@pytest.mark.parametrize(
    "key, value, message",
    [("seed", -1, r"seed=-1 is not allowed: seed takes a whole number ≥ 0 \(seeds everything\)"),
     ("seed", "abc", "seed=abc is not allowed: seed takes a whole number ≥ 0"),
     ("seed", 1.5, "seed=1.5 is not allowed"),
     ("seed", True, "seed=true is not allowed"),
     ("flag", 3, "flag=3 is not allowed: flag takes true or false"),
     ("mode", "c", "mode=c is not allowed: mode takes one of a, b"),
     ("pair", [1.0], r"pair=\[1.0\] is not allowed: pair takes a list of 2 numbers ≥ 0"),
     ("pair", [1.0, -1.0], r"pair=\[1.0, -1.0\] is not allowed"),
     ("label", True, "label=true is not allowed: label takes a text or null"),
     ("inner.steps", 0, "inner.steps=0 is not allowed: inner.steps takes a whole number ≥ 1"),
     ("speed.rate", 1.0, r"speed.rate=1.0 is not allowed: speed.rate takes a number in \[0, 1\)"),
     ("speed.name", "warp", "speed.name=warp is not one of fast, slow"),
     ("speed", 5, "speed=5 is not allowed: speed takes a group of settings"),
     ("shape.width", 7, r"shape.width \(7\) is not a multiple of shape.heads"),
     ("extra", 1, "extra is not a setting; this command takes seed, flag"),
     ("speed.power", 1, "speed.power is not a setting of speed; speed takes name, rate."),
     ("shape.size", 4, "shape.size is not a setting of shape; shape takes width, heads."),
     ("seed", float("inf"), "seed=inf is not allowed")],
)  # fmt: skip
def test_a_value_a_key_does_not_take_is_one_sentence(key, value, message):
    with pytest.raises(ConfigError, match=message) as refused:
        check_settings(with_change(key, value), Settings)
    assert "\n" not in str(refused.value)
    assert str(refused.value).endswith(".")


def test_a_group_open_to_extra_keys_lets_them_through():
    checked = check_settings(with_change("inner.profiler", "simple"), Settings)
    assert checked["inner"] == {"steps": 3}


def test_a_required_key_that_is_missing_or_unset_is_named():
    settings = OmegaConf.create(GOOD)
    del settings["flag"]
    with pytest.raises(ConfigError, match="flag is not set; flag takes true or false"):
        check_settings(settings, Settings)
    with pytest.raises(ConfigError, match="seed is not set; give it on the command line"):
        check_settings(with_change("seed", "???"), Settings)


def test_an_interpolation_only_hydra_resolves_is_left_to_it():
    settings = with_change("label", "${hydra:runtime.output_dir}")
    assert "label" not in check_settings(settings, Settings)
