"""The settings each command takes (conf/<command>.yaml with its groups), checked by `run` before
the command starts: every key's kind and range, and the checks of keys together. Each group's
schema lives beside the code that uses it: the model's is GPTConfig itself, an optimizer's in
tinylm.training.optim, the data's in tinylm.data.settings, and so on.

Checks that need what only the data or a checkpoint tells (the vocabulary, a split's length, the
model a checkpoint holds, the devices of this machine) stay where that is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinylm.data.settings import DATA_SETTINGS
from tinylm.errors import ConfigError
from tinylm.generation.settings import GenerationSettings
from tinylm.model import GPTConfig
from tinylm.runs.folder import LAST_CHECKPOINT
from tinylm.schema import group, group_by, setting
from tinylm.serve.limits import Limits
from tinylm.tokenizers.settings import TOKENIZER_SETTINGS
from tinylm.training.muon import check_muon_fits_hardware
from tinylm.training.optim import OPTIMIZER_SETTINGS
from tinylm.training.settings import HardwareSettings, TrainerSettings

SEED_RANGE = {"low": 0, "high": 2**32 - 1}  # what numpy's and torch's generators take
DEVICE_HELP = "auto (a CUDA GPU, else MPS, else CPU), cpu, cuda, cuda:N or mps"
CHECKPOINT_HELP = f"a .ckpt file, or a run folder (its best checkpoint, else {LAST_CHECKPOINT})"
# tinylm.evaluation.SPLITS, named here so that a command's start does not import torchmetrics.
EVALUATION_SPLITS = ("train", "val")


@dataclass(kw_only=True)
class PathsSettings:
    log_dir: str = setting(help="run folders go under it")
    output_dir: str = setting(help="this run's folder")
    cache_dir: str = setting(help="tokenized caches, shared by every run")

    def __post_init__(self) -> None:
        for key, folder in vars(self).items():
            if not str(folder).strip():  # "" would put the folders at the file system's root
                raise ConfigError(
                    f"paths.{key} is empty; give a folder (paths.{key}=outputs), or leave it out "
                    "to use the config's default."
                )


@dataclass(kw_only=True)
class CommandSettings:
    task_name: str = setting(help="names the folder under paths.log_dir")
    paths: dict = group(PathsSettings)


@dataclass(kw_only=True)
class TrainSettings(CommandSettings):
    seed: int = setting(help="model init and training batches", **SEED_RANGE)
    compile: str | bool = setting(help="torch.compile the GPT", choices=("auto", True, False))
    resume: str | None = setting(help="a run folder to continue, or latest")
    ckpt_path: str | None = setting(help="a checkpoint file to start a new run from")
    init_from: str | None = setting(help="trained weights to fine-tune")
    name: str | None = setting(None, "the run's name (experiment=learning_path)")
    model: dict = group(GPTConfig, "the model's shape", supplied={"vocab_size": 1})
    data: dict = group_by("_target_", DATA_SETTINGS)
    tokenizer: dict = group_by("kind", TOKENIZER_SETTINGS)
    optimizer: dict = group_by("name", OPTIMIZER_SETTINGS)
    trainer: dict = group(TrainerSettings)
    hardware: dict = group(HardwareSettings)
    logger: dict | None = setting(help="loggers by name; null switches one off")
    callbacks: dict | None = setting(help="callbacks by name; null switches one off")

    def __post_init__(self) -> None:
        if self.optimizer["name"] == "muon":
            check_muon_fits_hardware(self.hardware)


@dataclass(kw_only=True)
class PrepareDataSettings(CommandSettings):
    seed: int = setting(help="the data's seed", **SEED_RANGE)
    epochs: int = setting(help="data=fineweb: epochs of data.tokens_per_epoch to tokenize", low=1)
    model: dict = group(GPTConfig, "only block_size is read", supplied={"vocab_size": 1})
    data: dict = group_by("_target_", DATA_SETTINGS)
    tokenizer: dict = group_by("kind", TOKENIZER_SETTINGS)


@dataclass(kw_only=True)
class ContextFromCheckpoint:
    block_size: None = setting(help="the checkpoint's context length")


@dataclass(kw_only=True)
class EvalSettings(CommandSettings):
    seed: int = setting(help="data configs refer to it", **SEED_RANGE)
    device: str = setting(help=DEVICE_HELP)
    ckpt_path: str | None = setting(help=CHECKPOINT_HELP)
    split: str = setting(help="the split to evaluate", choices=EVALUATION_SPLITS)
    limit_batches: int | None = setting(help="batches evaluated; null: the whole split", low=1)
    output_file: str = setting(help="eval.json")
    data: dict | None = group_by("_target_", DATA_SETTINGS)
    model: dict = group(ContextFromCheckpoint)
    tokenizer: None = setting(help="the checkpoint's tokenizer")


@dataclass(frozen=True, kw_only=True)
class GenerateSettings(GenerationSettings):
    task_name: str = setting(help="names the folder under paths.log_dir")
    paths: dict = group(PathsSettings)
    seed: int = setting(help="the same seed, checkpoint and settings give the same text",
                        **SEED_RANGE)  # fmt: skip
    device: str = setting(help=DEVICE_HELP)
    ckpt_path: str | None = setting(help=CHECKPOINT_HELP)
    prompt: str | list[str] | None = setting(help="a text, or a list of texts")
    prompt_file: str | None = setting(help="a file whose whole text is one prompt")
    output_file: str | None = setting(help="a JSON-lines file to append every sequence to")


@dataclass(kw_only=True)
class ExportSettings(CommandSettings):
    ckpt_path: str | None = setting(help=CHECKPOINT_HELP)
    output_dir: str | None = setting(help="the folder to write; new or empty")


@dataclass(kw_only=True)
class CompareSettings(CommandSettings):
    runs: str | list[str] | None = setting(help="run or sweep folders")
    output: str = setting(help="the PNG; the table goes beside it")
    target: float | None = setting(help="a val/loss: the table adds each run's time to reach it")
    baseline: str | None = setting(
        help="a setting of the table over seeds (baseline=none: +ablation=none): it adds each "
        "one's difference from it, seed by seed"
    )

    def __post_init__(self) -> None:
        if not str(self.output).endswith(".png"):  # savefig writes PNG bytes whatever the name
            raise ConfigError(
                f"output={self.output} does not end in .png: compare draws a PNG (its table goes "
                "beside it as .md); give a path ending in .png."
            )


@dataclass(kw_only=True)
class AttentionSettings(CommandSettings):
    device: str = setting(help=DEVICE_HELP)
    ckpt_path: str | None = setting(help=CHECKPOINT_HELP)
    prompt: str | None = setting(help="the text to look at, one prompt at a time")
    prompt_file: str | None = setting(help="a file whose whole text is the prompt")
    layer: int | None = setting(help="one layer, counted from 0; null: all", low=0)
    head: int | None = setting(help="one head, counted from 0; null: all", low=0)
    trace: bool = setting(help="also print the shape of every intermediate tensor")
    output_file: str = setting(help="the PNG")


@dataclass(kw_only=True)
class ServeSettings(CommandSettings):
    device: str = setting(help=DEVICE_HELP)
    ckpt_path: str | None = setting(help=CHECKPOINT_HELP)
    host: str = setting(help="the address to listen on; 127.0.0.1: this machine only")
    port: int = setting(help="the port; 0: any free one", low=0, high=65535)
    limits: dict = group(Limits, "how much one request may ask")


# By the name of the command's module (= the script's name).
COMMAND_SETTINGS: dict[str, type] = {
    "train": TrainSettings,
    "prepare_data": PrepareDataSettings,
    "eval": EvalSettings,
    "generate": GenerateSettings,
    "export": ExportSettings,
    "compare": CompareSettings,
    "attention": AttentionSettings,
    "serve": ServeSettings,
}


def settings_of(command: Any) -> type:
    """The schema of a command function (tinylm.commands.<name>.<function>)."""
    return COMMAND_SETTINGS[command.__module__.rsplit(".", 1)[-1]]
