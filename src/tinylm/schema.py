"""Typed settings, checked once at the start of a command, before anything is written.

A schema is a dataclass whose fields are the keys of a config group: the field's type says what
kind of value the key takes, `setting(...)` adds its range and one line of help, and the class's
`__post_init__` checks what involves several keys (it runs on the checked values). `group(Schema)`
is a nested group (`trainer`, `model`); `group_by(key, schemas)` picks a group's schema by one of
its values (`optimizer.name`, `tokenizer.kind`, `data._target_`). A schema with
`EXTRA_KEYS = True` lets keys it does not list through (Lightning's Trainer takes any of its
arguments as `+trainer.NAME=`); any other unknown key is refused.

`check_settings(values, Schema)` raises a ConfigError naming the key, the value, what the key
takes and what to do, e.g.
    trainer.accumulate_grad_batches=0 is not allowed: trainer.accumulate_grad_batches takes a
    whole number ≥ 1 (micro-batches per optimizer step); change it, or leave it out to use the
    config's default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass
from functools import cache
from typing import Any, Literal

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from tinylm.errors import ConfigError

SKIP = object()  # a value that cannot be read here (an interpolation only Hydra's app resolves)


@dataclass(frozen=True)
class Range:
    """Where a number may lie; None leaves a side open. Applies to each item of a list."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is excluded
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        low, high = (None if x is None else shown(x) for x in (self.low, self.high))
        if low is not None and high is not None:
            return (
                f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
            )
        if low is not None:
            return f"{'>' if self.low_open else '≥'} {low}"
        return f"{'<' if self.high_open else '≤'} {high}" if high is not None else ""


@dataclass(frozen=True)
class GroupBy:
    """A group whose schema depends on one of its own values (its discriminator)."""

    key: str
    schemas: Mapping[Any, type]


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    length: int | None = None,
    choices: Sequence[Any] | None = None,
) -> Any:
    """A schema field: its default (none: the key is required), one line of help, the range
    its numbers (or each number of its list, of `length` items) must lie in, or the `choices`
    it must be one of."""
    metadata = {
        "help": help,
        "range": Range(low, high, low_open, high_open),
        "length": length,
        "choices": None if choices is None else tuple(choices),
    }
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def group(schema: type, help: str = "", supplied: Mapping[str, Any] | None = None) -> Any:
    """A field holding a group of settings that `schema` describes. `supplied`: stand-ins for
    required fields the config does not hold (the model's vocab_size, known once the data is
    tokenized), so that the schema's own checks can run."""
    metadata = {"help": help, "group": schema, "supplied": dict(supplied or {})}
    return dataclasses.field(default=None, metadata=metadata)


def group_by(key: str, schemas: Mapping[Any, type], help: str = "") -> Any:
    """A field holding a group whose schema is `schemas[group[key]]`."""
    return dataclasses.field(
        default=None, metadata={"help": help, "group_by": GroupBy(key, schemas)}
    )


def check_settings(
    values: Any, schema: type, prefix: str = "", supplied: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Refuse, in one sentence, the first key of `values` (a DictConfig or a dict) that `schema`
    does not take; then run the schema's own checks of keys together (its __post_init__).
    Return the checked values as plain Python (those that cannot be resolved here left out)."""
    checked = check_fields(values, schema, prefix, supplied)
    if hasattr(schema, "__post_init__") and all(
        name in checked for name, field in fields_of(schema).items() if is_required(field)
    ):
        schema(**checked)
    return checked


def check_fields(
    values: Any, schema: type, prefix: str = "", supplied: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check each key of `values` on its own (kind, range, choices, nested groups); return the
    checked values as plain Python."""
    supplied = supplied or {}
    hints = type_hints(schema)
    known = fields_of(schema)
    keys = list(values.keys())
    if not getattr(schema, "EXTRA_KEYS", False):
        for key in keys:
            if key not in known or key in supplied:
                settings = ", ".join(name for name in known if name not in supplied)
                raise ConfigError(
                    f"{prefix}{key} is not a setting{f' of {prefix[:-1]}' if prefix else ''}; "
                    f"{prefix[:-1] or 'this command'} takes {settings}. Remove it or check its "
                    "spelling."
                )
    checked = {}
    for name, field in known.items():
        key = prefix + name
        if name in supplied:
            checked[name] = supplied[name]
            continue
        if name not in keys:
            if is_required(field):
                raise ConfigError(f"{key} is not set; {key} takes {describe(field, hints[name])}.")
            continue
        value = read(values, name, key)
        if value is SKIP:
            continue
        if not fits(value, hints[name], field):
            raise ConfigError(wrong_value(key, value, field, hints[name]))
        if value is not None and "group_by" in field.metadata:
            value = check_group(value, field.metadata["group_by"], key)
        elif value is not None and "group" in field.metadata:
            group_schema, supplied_there = field.metadata["group"], field.metadata["supplied"]
            value = check_settings(value, group_schema, f"{key}.", supplied_there)
        checked[name] = plain(value)
    return checked


def fields_of(schema: type) -> dict[str, dataclasses.Field]:
    return {field.name: field for field in dataclasses.fields(schema)}


def is_required(field: dataclasses.Field) -> bool:
    return field.default is MISSING and field.default_factory is MISSING


def check_group(values: Any, chosen: GroupBy, key: str) -> dict[str, Any]:
    if not isinstance(values, Mapping | DictConfig):
        raise ConfigError(
            f"{key} is a group of settings, not {values!r}; pick one with {key}=NAME."
        )
    choice = read(values, chosen.key, f"{key}.{chosen.key}")
    if choice is SKIP:
        return {}
    if choice not in chosen.schemas:
        allowed = ", ".join(str(name) for name in chosen.schemas)
        raise ConfigError(f"{key}.{chosen.key}={choice} is not one of {allowed}; pick one of them.")
    return check_settings(values, chosen.schemas[choice], f"{key}.")


def read(values: Any, name: str, key: str) -> Any:
    """The value of `name`, resolved; SKIP for an interpolation that cannot be resolved here."""
    if not isinstance(values, DictConfig):
        return values[name]
    try:
        return values[name]
    except MissingMandatoryValue:
        raise ConfigError(f"{key} is not set; give it on the command line, {key}=...") from None
    except InterpolationResolutionError:
        return SKIP


def plain(value: Any) -> Any:
    """Python's own containers; interpolations left as they are (only Hydra's app resolves some:
    a logger's save_dir names the run folder)."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value)
    return value


@cache
def type_hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def options_of(hint: Any) -> tuple:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def fits(value: Any, hint: Any, field: dataclasses.Field) -> bool:
    choices = field.metadata.get("choices")
    if choices is not None and value is not None:
        return any(is_same(value, choice) for choice in choices)
    return any(fits_one(value, option, field) for option in options_of(hint))


def fits_one(value: Any, hint: Any, field: dataclasses.Field) -> bool:
    numbers = field.metadata.get("range", Range())
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin is Literal:
        return any(is_same(value, choice) for choice in hint.__args__)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and numbers.holds(value)
    if hint is float:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and numbers.holds(value)
        )
    if hint is str:  # Hydra reads `name=2024` as a number: any plain value is fine text
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, Sequence | ListConfig) or isinstance(value, str):
            return False
        length = field.metadata.get("length")
        items = typing.get_args(hint)[:1] or (Any,)
        return (length is None or len(value) == length) and all(
            fits(item, items[0], field) for item in value
        )
    if origin is dict or hint is dict:
        return isinstance(value, Mapping | DictConfig)
    raise TypeError(f"The settings schema cannot check a field of type {hint!r}.")


def is_same(value: Any, choice: Any) -> bool:
    """Equal and of the same kind: `true` is not the choice 1."""
    return value == choice and type(value) is type(choice)


def wrong_value(key: str, value: Any, field: dataclasses.Field, hint: Any) -> str:
    return (
        f"{key}={shown(value)} is not allowed: {key} takes {describe(field, hint)}; change it, "
        "or leave it out to use the config's default."
    )


def describe(field: dataclasses.Field, hint: Any) -> str:
    """What a key takes, in words: `a whole number ≥ 1 (micro-batches per optimizer step)`."""
    numbers = field.metadata.get("range", Range()).describe()
    length = field.metadata.get("length")
    choices = field.metadata.get("choices")
    if choices is not None:
        none = " or null" if type(None) in options_of(hint) else ""
        help_line = field.metadata.get("help")
        listed = ", ".join(shown(choice) for choice in choices)
        return f"one of {listed}{none}" + (f" ({help_line})" if help_line else "")
    words = [kind_in_words(option, numbers, length) for option in options_of(hint)]
    help_line = field.metadata.get("help")
    return " or ".join(words) + (f" ({help_line})" if help_line else "")


def kind_in_words(hint: Any, numbers: str, length: int | None) -> str:
    origin = typing.get_origin(hint)
    with_range = f" {numbers}" if numbers else ""
    if hint is type(None):
        return "null"
    if origin is Literal:
        listed = ", ".join(shown(choice) for choice in hint.__args__)
        return listed if len(hint.__args__) == 1 else f"one of {listed}"
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number" + with_range
    if hint is float:
        return "a number" + with_range
    if hint is str:
        return "a text"
    if origin in (list, tuple) or hint in (list, tuple):
        item = typing.get_args(hint)[:1]
        items = kind_in_words(item[0], "", None) if item else "value"
        count = f"{length} " if length else ""
        plural = items.replace("a whole number", "whole numbers").replace("a number", "numbers")
        return f"a list of {count}{plural}{with_range}"
    return "a group of settings" if hint is not Any else "any value"


def shown(value: Any) -> str:
    """A value as it is written on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown(item) for item in value) + "]"
    return str(value)
