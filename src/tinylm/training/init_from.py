"""Starting a new run from trained weights (fine-tuning): `init_from=` a tinylm checkpoint or run
folder, a 🤗 transformers folder (GPT-2, Llama, Qwen3 or NanoChat), or a hub id such as
openai-community/gpt2.

The run takes the source's architecture (the model settings its weights fix) and its tokenizer.
Its own config keeps the rest: dropout and the attention implementation, which weights do not
fix, and everything about training. A model or tokenizer setting given on the command line that
contradicts the source is an error, never silently overruled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, open_dict

from tinylm.checkpoint import load_checkpoint
from tinylm.errors import ConfigError
from tinylm.model import GPT
from tinylm.model.config import ARCHITECTURE, RECIPE_SWITCHES
from tinylm.tokenizers import Tokenizer, saved_tokenizer_spec
from tinylm.tokenizers.tiktoken_tokenizer import TiktokenTokenizer

log = logging.getLogger(__name__)


@dataclass
class StartingPoint:
    model: GPT
    tokenizer: Tokenizer

    @property
    def vocab_size(self) -> int:
        return self.model.config.vocab_size

    def data_settings(self) -> dict:
        """The data module's arguments that make it tokenize with the source's tokenizer."""
        return {"tokenizer": saved_tokenizer_spec(self.tokenizer)}

    def copy_weights_into(self, model: GPT) -> None:
        model.load_state_dict(self.model.state_dict())


def starting_point(cfg: DictConfig, command_line: list[str]) -> StartingPoint:
    """Load cfg.init_from, check `command_line` (the Hydra overrides) against it, and write its
    architecture into cfg.model, so that everything reading the config (the data's context
    length, the logged hyper-parameters) sees the model that trains."""
    source = str(cfg.init_from)
    # A run that continues from a checkpoint of its own (resume=, ckpt_path=) takes the same
    # architecture and tokenizer from that checkpoint, whose weights replace the source's: the
    # source is not read again, and may since have been moved or be offline.
    loaded = load_checkpoint(cfg.get("ckpt_path") or source)
    architecture = {name: getattr(loaded.model.config, name) for name in ARCHITECTURE}
    found = contradictions(command_line, cfg, architecture, tokenizer_settings(loaded.tokenizer))
    if found:
        raise ConfigError(
            f"init_from={source} sets the model and the tokenizer, and the command line "
            f"contradicts it: {'; '.join(found)}. Remove these settings."
        )
    with open_dict(cfg.model):
        cfg.model.update(architecture)
    log.info(f"Starting from the weights of {loaded.describe()}")
    return StartingPoint(loaded.model, loaded.tokenizer)


def tokenizer_settings(tokenizer: Tokenizer) -> dict:
    """What a conf/tokenizer/*.yaml can say about `tokenizer`."""
    settings = {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size}
    if isinstance(tokenizer, TiktokenTokenizer):
        settings["encoding"] = tokenizer.encoding_name
    return settings


def contradictions(
    command_line: list[str], cfg: DictConfig, architecture: dict, tokenizer: dict
) -> list[str]:
    """Each model or tokenizer setting of the command line (a whole group such as `model=small`
    or `arch=modern`, which sets the model's switches, or one key) whose composed value differs
    from the source's, as `key=value where the source has value`."""
    composed = {"model": cfg.model, "tokenizer": cfg.tokenizer}
    source = {"model": architecture, "tokenizer": tokenizer}
    found: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(command_line):
        if override.key_or_group == "arch":  # a recipe: it sets the model's switches
            group, names = "model", list(RECIPE_SWITCHES)
        else:
            group, _, key = override.key_or_group.partition(".")
            if group not in composed:
                continue
            names = [key] if key else list(composed[group])
        for name in names:
            value = composed[group].get(name)
            if name in source[group] and value != source[group][name]:
                found[f"{group}.{name}"] = (
                    f"{group}.{name}={value} where the source has {source[group][name]}"
                )
    return list(found.values())
