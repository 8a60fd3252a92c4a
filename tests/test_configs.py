"""Every shipped config composes with the real defaults list, passes its command's settings
schema, resolves, and instantiates."""

import typing
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR, compose_config, compose_train
from tinylm.commands.generate import generation_settings
from tinylm.commands.settings import COMMAND_SETTINGS, EVALUATION_SPLITS
from tinylm.data import TokenDataModule
from tinylm.data.settings import TINYSTORIES_VARIANTS
from tinylm.data.tinystories import VARIANT_FILES
from tinylm.evaluation import SPLITS
from tinylm.generation.settings import STRATEGIES, GenerationSettings
from tinylm.model import GPT, GPTConfig
from tinylm.model.config import RECIPE_SWITCHES
from tinylm.schema import check_settings
from tinylm.serve.requests import GenerateRequest
from tinylm.tokenizers import BACKENDS
from tinylm.tokenizers.settings import TOKENIZER_SETTINGS
from tinylm.training.hardware import trainer_kwargs
from tinylm.training.settings import PRECISIONS
from tinylm.utils.hydra import instantiate_dict

GROUPS = ["model", "arch", "data", "tokenizer", "optimizer", "hardware", "logger", "callbacks",
          "paths", "experiment", "hparams_search", "debug", "ablation"]  # fmt: skip
ADDED_GROUPS = {"ablation"}  # not in train.yaml's defaults: added with +group=option
OPTIONS = [
    (group, path.stem) for group in GROUPS for path in sorted((CONF_DIR / group).glob("*.yaml"))
]


def test_every_config_file_is_covered():
    listed = {f"{group}/{option}.yaml" for group, option in OPTIONS}
    shipped = {
        path.relative_to(CONF_DIR).as_posix()
        for path in CONF_DIR.glob("*/*.yaml")
        if path.parent.name != "hydra"  # Hydra's own settings, composed by every test
    }
    assert shipped == listed


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}/{o}" for g, o in OPTIONS])
def test_each_config_composes_and_resolves(tmp_path: Path, group, option):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("some text")
    # data=text needs its file; the hub datasets keep their own path (a hub id).
    local_text = [] if group == "data" and option != "text" else [f"data.path={corpus}"]
    plus = "+" if group in ADDED_GROUPS else ""
    cfg = compose_train(tmp_path, f"{plus}{group}={option}", *local_text)
    checked = check_settings(cfg, COMMAND_SETTINGS["train"])
    assert checked["trainer"]["max_steps"] == cfg.trainer.max_steps
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["model"]["block_size"] > 0
    assert resolved["data"]["block_size"] == resolved["model"]["block_size"]
    assert set(trainer_kwargs(cfg)) >= {"max_steps", "accelerator", "devices", "precision"}
    if group in ("logger", "callbacks"):
        assert all(obj is not None for obj in instantiate_dict(cfg[group]).values())
    if group == "data":
        datamodule = instantiate(cfg.data, _convert_="all")
        assert isinstance(datamodule, TokenDataModule) and datamodule.name == option


SIZES = sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))
RECIPES = sorted(path.stem for path in (CONF_DIR / "arch").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_sets_every_switch_and_nothing_else(recipe):
    assert set(OmegaConf.load(CONF_DIR / "arch" / f"{recipe}.yaml")) == set(RECIPE_SWITCHES)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("size", SIZES)
def test_every_recipe_composes_with_every_size_into_a_model(tmp_path, size, recipe):
    cfg = compose_train(tmp_path, f"model={size}", f"arch={recipe}")
    # Every GPTConfig field is a model.* key, so each switch can be flipped on the command line.
    assert set(cfg.model) == {field for field in GPTConfig.__dataclass_fields__} - {"vocab_size"}
    config = GPTConfig(vocab_size=65, **cfg.model)
    recipe_values = OmegaConf.load(CONF_DIR / "arch" / f"{recipe}.yaml")
    assert {name: getattr(config, name) for name in RECIPE_SWITCHES} == recipe_values
    if size == "tiny":
        assert GPT(config).num_parameters() > 0


def test_a_switch_flips_alone_on_top_of_a_recipe(tmp_path):
    cfg = compose_train(tmp_path, "arch=modern", "model.qk_norm=false", "model.n_kv_head=2")
    assert (cfg.model.qk_norm, cfg.model.n_kv_head, cfg.model.norm) == (False, 2, "rmsnorm")


def test_the_prepare_data_config_composes_with_the_same_data_settings(tmp_path):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("prepare_data", overrides=["data=fineweb", "tokenizer=bpe", "epochs=3"])
    train_cfg = compose_train(tmp_path, "data=fineweb", "tokenizer=bpe")
    prepared, trained = (OmegaConf.to_container(c.data, resolve=True) for c in (cfg, train_cfg))
    assert prepared.pop("cache_dir") != trained.pop("cache_dir")  # the test moved its cache
    assert prepared == trained and cfg.epochs == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the choice made without a GPU")
def test_the_schema_takes_the_precisions_lightning_takes():
    from lightning.fabric.connector import _PRECISION_INPUT

    lightnings = {value for kind in typing.get_args(_PRECISION_INPUT) for value in kind.__args__}
    assert set(PRECISIONS) == lightnings


def test_auto_hardware_trains_in_32_bit_without_a_gpu(tmp_path):
    cfg = compose_train(tmp_path, "hardware=auto", "data.path=corpus.txt")
    assert trainer_kwargs(cfg)["precision"] == "32-true"


def test_the_slurm_launcher_composes_and_sizes_jobs_from_the_hardware(tmp_path):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            ["hydra/launcher=slurm", "hardware=ddp", "hardware.devices=4",
             "hardware.num_nodes=2", "data.path=corpus.txt", f"paths.log_dir={tmp_path}"],
            return_hydra_config=True,
        )  # fmt: skip
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.submitit_folder.startswith(f"{tmp_path}/train/multiruns/")


def test_the_optuna_search_is_a_sweep_over_the_documented_parameters(tmp_path):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", ["hparams_search=optuna", "data.path=corpus.txt"],
                      return_hydra_config=True)  # fmt: skip
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert cfg.hydra.sweeper._target_.endswith("optuna_sweeper.OptunaSweeper")
    assert set(cfg.hydra.sweeper.params) == {
        "optimizer.lr", "optimizer.weight_decay", "optimizer.warmup_steps", "data.batch_size"
    }  # fmt: skip


def test_the_generate_config_composes_into_valid_settings():
    cfg = compose_config("generate", "ckpt_path=run/checkpoints/last.ckpt")
    settings = generation_settings(cfg)
    assert settings.strategy == "sample" and settings.use_cache and settings.stop_at_eos
    assert cfg.prompt is None and cfg.device == "auto"


def test_generation_has_one_set_of_defaults_the_config_and_the_playground_share():
    defaults = GenerationSettings()
    assert generation_settings(compose_config("generate")) == defaults
    omitted = GenerateRequest().model_dump()  # what the API uses for a field a request leaves out
    assert {name: omitted[name] for name in omitted if hasattr(defaults, name)} == {
        name: getattr(defaults, name) for name in omitted if hasattr(defaults, name)
    }


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_composes_from_the_command_line(strategy):
    cfg = compose_config("generate", f"strategy={strategy}", "num_beams=2", "top_p=0.9")
    assert generation_settings(cfg).strategy == strategy


DATA_OPTIONS = [option for group, option in OPTIONS if group == "data"]


@pytest.mark.parametrize("data", DATA_OPTIONS)
def test_the_eval_config_composes_with_each_data_config(tmp_path, data):
    cfg = compose_config("eval", f"data={data}", "data.path=corpus.txt",
                         f"paths.output_dir={tmp_path}")  # fmt: skip
    resolved = OmegaConf.to_container(cfg, resolve=True)
    # The context and the tokenizer are the checkpoint's, given to the data when it is built.
    assert resolved["data"]["block_size"] is None and resolved["data"]["tokenizer"] is None
    assert resolved["split"] == "val" and resolved["limit_batches"] == 50
    assert resolved["output_file"] == f"{tmp_path}/eval.json"


TOP_LEVEL = sorted(path.stem for path in CONF_DIR.glob("*.yaml"))


def test_every_command_has_a_settings_schema():
    assert set(TOP_LEVEL) == set(COMMAND_SETTINGS)


@pytest.mark.parametrize("command", TOP_LEVEL)
def test_each_command_config_passes_its_schema(tmp_path, command):
    overrides = ["data.path=corpus.txt", "data=text"] if command == "train" else []
    cfg = compose_config(command, f"paths.output_dir={tmp_path}", *overrides)
    checked = check_settings(cfg, COMMAND_SETTINGS[command])
    assert checked["task_name"] == command and checked["paths"]["output_dir"] == str(tmp_path)


def test_the_schemas_choices_are_the_codes_choices():
    assert TINYSTORIES_VARIANTS == tuple(VARIANT_FILES)
    assert set(TOKENIZER_SETTINGS) == set(BACKENDS)
    assert EVALUATION_SPLITS == SPLITS
