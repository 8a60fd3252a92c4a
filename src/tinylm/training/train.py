"""train(cfg): compose the data, the model and Lightning's Trainer from a Hydra config, fit."""

from __future__ import annotations

import logging
import math
import signal
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from tinylm.checkpoint import check_checkpoint_fits
from tinylm.data import TokenDataModule
from tinylm.errors import ConfigError
from tinylm.model import GPTConfig
from tinylm.runs.checkpoint_io import AtomicCheckpointIO, StopWhenSaveFailed
from tinylm.runs.continuation import ContinueFromCheckpoint
from tinylm.runs.folder import RunFolder
from tinylm.runs.interrupts import StopOnSignal
from tinylm.runs.loss_curve import LossCurve
from tinylm.training.hardware import (
    apply_global_batch,
    check_hardware_is_here,
    check_processes_can_start,
    process_count,
    trainer_kwargs,
)
from tinylm.training.init_from import StartingPoint, starting_point
from tinylm.training.module import GPTLightningModule
from tinylm.training.optim import capped_warmup_note
from tinylm.training.wandb_logger import finish_wandb_run
from tinylm.utils.hydra import command_line_overrides, instantiate_dict

log = logging.getLogger(__name__)
info = rank_zero_only(log.info)


@dataclass
class TrainingResult:
    best_val_loss: float  # nan when no validation ran, inf when every one was NaN
    final_val_loss: float
    steps: int  # optimizer steps taken, counting those before a resume
    best_checkpoint: str | None
    stopped_by: signal.Signals | None = None  # Ctrl-C (SIGINT) or SIGTERM stopped it early


def fit(cfg: DictConfig) -> TrainingResult:
    """Train as `cfg` says; return what the run reached.

    The recipe: seed, data, trainer, model, hyper-parameters, fit, result. The trainer comes
    before the model because the model's vocabulary is the tokenizer's, and a char or BPE
    tokenizer is learned from the data: what the trainer refuses is said before the data is
    tokenized, which can take long. Every setting's kind and range was checked when the command
    started (tinylm.commands.settings); what needs a file, a checkpoint or this machine is
    checked first here, by check_before_fit.
    """
    check_before_fit(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    # init_from: the source's architecture (written into cfg.model), tokenizer and weights.
    start = starting_point(cfg, command_line_overrides()) if cfg.get("init_from") else None
    data_settings = start.data_settings() if start else {}
    make_datamodule = instantiate(cfg.data, _partial_=True, _convert_="all")
    datamodule: TokenDataModule = make_datamodule(**data_settings)
    trainer = build_trainer(cfg, datamodule)
    module = build_module(cfg, datamodule, start, data_settings)
    report_start(cfg, module, datamodule, trainer)
    completed = False
    try:
        for logger in trainer.loggers:  # the whole resolved config, next to the module's hparams
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        trainer.fit(
            module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True
        )
        completed = True
    finally:
        # Closed here, so that the next job of a sweep run in this process starts its own.
        finish_wandb_run(trainer.loggers, failed=not completed)
    return report_end(trainer)


def check_before_fit(cfg: DictConfig) -> None:
    """Refuse, in one sentence each, what `cfg` asks that cannot be: hardware this machine
    lacks (tinylm.training.hardware), a ckpt_path that is a folder, missing, unreadable or of
    another model shape. The checkpoint's tokenizer is checked once the data has given this run
    its own (build_module)."""
    check_hardware_is_here(cfg.hardware)
    ckpt_path = cfg.get("ckpt_path")
    if not ckpt_path:
        return
    if Path(ckpt_path).is_dir():
        raise ConfigError(
            f"ckpt_path={ckpt_path} is a folder; training starts from a checkpoint file, "
            f"e.g. ckpt_path={RunFolder(ckpt_path).last_checkpoint}, and "
            f"resume={ckpt_path} continues a run in its own folder."
        )
    if not cfg.get("init_from"):  # with init_from, the model's shape is read from ckpt_path
        shape = model_config(cfg.model, vocab_size=1).to_dict()
        check_checkpoint_fits(ckpt_path, {k: v for k, v in shape.items() if k != "vocab_size"})


def model_config(settings: DictConfig, vocab_size: int) -> GPTConfig:
    """The GPTConfig that `model.*` describes (its keys checked by the command's schema)."""
    return GPTConfig(vocab_size=vocab_size, **settings)


def build_trainer(cfg: DictConfig, datamodule: TokenDataModule) -> L.Trainer:
    """Lightning's Trainer with `trainer.*`, `hardware.*`, the loggers and the callbacks, taking
    the data's global batch on this machine's processes; what it refuses (an unknown argument,
    a value it cannot use, processes that it could not start or would start wrongly) is one
    sentence."""
    output_dir = Path(cfg.paths.output_dir)
    try:
        trainer = L.Trainer(
            **trainer_kwargs(cfg),
            logger=list(instantiate_dict(cfg.get("logger")).values()),
            # Checkpoints are written whole or not at all; a failed save stops every process.
            callbacks=[
                *instantiate_dict(cfg.get("callbacks")).values(),
                StopWhenSaveFailed(),
                ContinueFromCheckpoint(str(output_dir)),  # a resumed run's files, cut back
            ],
            plugins=[AtomicCheckpointIO()],
            default_root_dir=str(output_dir),
        )
    except (MisconfigurationException, TypeError, ValueError) as error:
        raise ConfigError(
            f"Lightning's Trainer refuses the trainer/hardware settings: {error}"
        ) from error
    check_processes_can_start(trainer)
    if datamodule.global_batch_size is not None:
        apply_global_batch(trainer, datamodule.global_batch_size, datamodule.batch_size)
    return trainer


def build_module(
    cfg: DictConfig, datamodule: TokenDataModule, start: StartingPoint | None, data_settings: dict
) -> GPTLightningModule:
    """The GPT to train, with the vocabulary of the data's tokenizer (or init_from's weights).

    Sets the data up first: a char or BPE tokenizer is learned from it. setup() builds a
    missing cache itself; every process may call it: one builds, under a lock, the others reuse
    it."""
    datamodule.setup("fit")
    tokenizer = datamodule.tokenizer
    vocab_size = start.vocab_size if start else tokenizer.vocab_size
    if cfg.get("ckpt_path"):
        check_checkpoint_fits(cfg.ckpt_path, {"vocab_size": vocab_size}, tokenizer)
    module = GPTLightningModule(
        model_config=model_config(cfg.model, vocab_size).to_dict(),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        tokenizer_state=tokenizer.state_dict(),
        data_fingerprint=datamodule.cache.key,
        data_config=OmegaConf.to_container(cfg.data, resolve=True) | data_settings,
        compile=cfg.compile,
    )
    if start:
        start.copy_weights_into(module.model)
    return module


def report_start(cfg, module, datamodule, trainer: L.Trainer) -> None:
    model = module.model
    processes = process_count(trainer)
    tokens_per_step = (
        datamodule.batch_size
        * model.config.block_size
        * trainer.accumulate_grad_batches
        * processes
    )
    info(f"Run folder: {Path(cfg.paths.output_dir).resolve()}")
    info(f"Data: {datamodule.describe()}")
    info(f"Tokenizer: {datamodule.tokenizer.describe()}")
    info(
        f"Model: {model.num_parameters() / 1e6:.2f}M parameters, "
        f"{model.num_parameters(include_embeddings=False) / 1e6:.2f}M without embeddings "
        f"({model.config.n_layer} layers, d_model {model.config.d_model}, "
        f"{model.config.n_head} heads, context {model.config.block_size})"
    )
    info(
        f"Tokens per optimizer step: {tokens_per_step:,} = batch {datamodule.batch_size}"
        f" × context {model.config.block_size} × accumulation {trainer.accumulate_grad_batches}"
        f" × devices {processes}; {trainer.max_steps:,} steps"
    )
    warmup_note = capped_warmup_note(cfg.optimizer.warmup_steps, trainer.max_steps)
    if warmup_note:
        rank_zero_only(log.warning)(warmup_note)
    if cfg.get("resume"):
        info(f"Resuming in place from {cfg.ckpt_path}")
    elif cfg.get("ckpt_path"):
        info(f"Resuming from {cfg.ckpt_path}")


def report_end(trainer: L.Trainer) -> TrainingResult:
    final = trainer.callback_metrics.get("val/loss")
    final_loss = float(final) if final is not None else math.nan
    best_loss, best_path = final_loss, None
    checkpoint = next(
        (c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.monitor),
        None,
    )
    if checkpoint is not None and checkpoint.best_model_score is not None:
        best_loss, best_path = float(checkpoint.best_model_score), checkpoint.best_model_path
    info(f"val/loss: final {final_loss:.4f}, best {best_loss:.4f}")
    if best_path:
        info(f"Best checkpoint: {best_path}")
    stopped_by = None
    for callback in trainer.callbacks:
        if isinstance(callback, LossCurve) and callback.path.exists():
            info(f"Loss curve: {callback.path}")
        if isinstance(callback, StopOnSignal):
            stopped_by = callback.requested
    return TrainingResult(best_loss, final_loss, trainer.global_step, best_path, stopped_by)
