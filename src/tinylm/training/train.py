"""train(cfg): compose the data, the model and Lightning's Trainer from a Hydra config, fit."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from tinylm.data import TokenDataModule
from tinylm.model import GPTConfig
from tinylm.training.callbacks import LossCurve
from tinylm.training.hardware import (
    apply_global_batch,
    process_count,
    refuse_relaunch_inside_sweep,
)
from tinylm.training.init_from import starting_point
from tinylm.training.module import GPTLightningModule
from tinylm.training.wandb_logger import finish_wandb_run
from tinylm.utils.hydra import command_line_overrides, instantiate_dict, trainer_kwargs

log = logging.getLogger(__name__)
info = rank_zero_only(log.info)


@dataclass
class TrainingResult:
    best_val_loss: float  # nan when no validation ran, inf when every one was NaN
    final_val_loss: float
    steps: int  # optimizer steps taken, counting those before a resume
    best_checkpoint: str | None


def fit(cfg: DictConfig) -> TrainingResult:
    """Train as `cfg` says; return what the run reached."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)

    # init_from: the source's architecture (written into cfg.model), tokenizer and weights.
    start = starting_point(cfg, command_line_overrides()) if cfg.get("init_from") else None
    make_datamodule = instantiate(cfg.data, _partial_=True, _convert_="all")
    datamodule: TokenDataModule = make_datamodule(**(start.data_settings() if start else {}))
    # Set up here, before the Trainer exists, because the model's vocabulary comes from the
    # tokenizer and a char or BPE tokenizer is learned from the data. setup() builds a missing
    # cache itself; every process may call it: one builds, under a lock, the others reuse it.
    datamodule.setup("fit")
    tokenizer = datamodule.tokenizer

    vocab_size = start.vocab_size if start else tokenizer.vocab_size
    model_config = GPTConfig(vocab_size=vocab_size, **cfg.model)
    module = GPTLightningModule(
        model_config=model_config.to_dict(),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        tokenizer_state=tokenizer.state_dict(),
        data_fingerprint=datamodule.cache.key,
    )
    if start:
        start.copy_weights_into(module.model)
    trainer = L.Trainer(
        **trainer_kwargs(cfg),
        logger=list(instantiate_dict(cfg.get("logger")).values()),
        callbacks=list(instantiate_dict(cfg.get("callbacks")).values()),
        default_root_dir=str(output_dir),
    )
    refuse_relaunch_inside_sweep(trainer)
    if datamodule.global_batch_size is not None:
        apply_global_batch(trainer, datamodule.global_batch_size, datamodule.batch_size)
    report_start(cfg, module, datamodule, trainer, output_dir)
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


def report_start(cfg, module, datamodule, trainer: L.Trainer, output_dir: Path) -> None:
    model = module.model
    processes = process_count(trainer)
    tokens_per_step = (
        datamodule.batch_size
        * model.config.block_size
        * trainer.accumulate_grad_batches
        * processes
    )
    info(f"Run folder: {output_dir.resolve()}")
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
    if cfg.get("ckpt_path"):
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
    for callback in trainer.callbacks:
        if isinstance(callback, LossCurve) and callback.path.exists():
            info(f"Loss curve: {callback.path}")
    return TrainingResult(best_loss, final_loss, trainer.global_step, best_path)
