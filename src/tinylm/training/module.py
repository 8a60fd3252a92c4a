"""The LightningModule: a GPT, next-token cross-entropy, AdamW with warmup + cosine."""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities import GradClipAlgorithmType

from tinylm.evaluation import Evaluation, next_token_loss
from tinylm.model import GPT, GPTConfig
from tinylm.runs.logging_steps import at_logging_step
from tinylm.tokenizers import tokenizer_from_state
from tinylm.training.compile import check_compile_setting, compile_model, should_compile
from tinylm.training.optim import build_optimizer, build_scheduler


class GPTLightningModule(L.LightningModule):
    """Trains a GPT. Its hyper-parameters — the model config, the optimizer config, the
    tokenizer's state, and the data config with the name of its tokenized cache — are saved in
    every checkpoint, so a checkpoint describes itself: generate and eval need nothing else."""

    def __init__(
        self,
        model_config: dict,
        optimizer: dict,
        tokenizer_state: dict,
        data_fingerprint: str = "",
        data_config: dict | None = None,
        compile: str | bool = "auto",
    ) -> None:
        super().__init__()
        # Whether to compile is a choice of this run, not a property of the model: a checkpoint
        # of a compiled run is resumed or loaded without compiling, and the other way round.
        self.save_hyperparameters(ignore=["compile"])
        self.compile_setting = check_compile_setting(compile)
        self.model = GPT(GPTConfig(**model_config))
        # What training and validation steps call: the GPT itself, or torch.compile's wrapper
        # of it (see setup). The wrapper is kept out of nn.Module's registry (put in __dict__,
        # not assigned): registered, it would add an `_orig_mod.` copy of every weight to the
        # state_dict. Generation samples keep calling self.model eagerly: their KV cache
        # changes length every token, which would recompile a compiled model again and again.
        self.__dict__["step_model"] = self.model
        self.train_loss: torch.Tensor | None = None  # the last training step's, on the device
        self.step_lr = 0.0  # the learning rate of the last training step
        # Sums over a whole validation pass (added across devices): eval.py's function too.
        token_byte_lengths = tokenizer_from_state(tokenizer_state).token_byte_lengths()
        self.val_evaluation = Evaluation(token_byte_lengths)

    def setup(self, stage: str) -> None:
        if should_compile(self.compile_setting, self.trainer.strategy.root_device):
            # Lazy: compiling happens at the first step, on the device the model has moved to.
            self.__dict__["step_model"] = compile_model(self.model)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch  # (B, T) each
        loss = next_token_loss(self.step_model(x), y)
        # Every step's loss, left on the device for callbacks (the loss curve keeps them all);
        # logged, with the learning rate of this step, in on_train_batch_end.
        self.train_loss = loss.detach()
        self.step_lr = self.lr_schedulers().get_last_lr()[0]
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # Lightning validates when a run asks to stop, not when max_steps ends it: asking
        # at the last step gives every run a final val/loss (and a checkpoint after it).
        if self.global_step >= self.trainer.max_steps > 0:
            self.trainer.should_stop = True
        # Logged for the steps the loggers write (every log_every_n_steps, and the last) and
        # only then: each self.log costs Lightning about a millisecond of bookkeeping, 2% of a
        # step of nanoGPT's Shakespeare model on the CPU. Not as progress-bar metrics, which
        # Lightning reads with .item() after every batch, making the host wait for the GPU.
        if at_logging_step(self.trainer, batch_idx) or self.trainer.should_stop:
            self.log("train/loss", self.train_loss)
            self.log("train/lr", self.step_lr)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch  # (B, T) each
        self.val_evaluation.update(self.step_model(x), y)

    def on_validation_epoch_end(self) -> None:
        # compute() has already added the sums of all devices; sync_dist=True says so to
        # Lightning (which warns otherwise) at the cost of averaging identical numbers once more.
        numbers = self.val_evaluation.compute()
        self.log("val/loss", numbers["loss"], prog_bar=True, sync_dist=True)
        self.log("val/ppl", numbers["perplexity"], sync_dist=True)
        self.log("val/acc", numbers["accuracy"], sync_dist=True)
        self.log("val/bpb", numbers["bpb"], sync_dist=True)  # comparable across tokenizers
        self.val_evaluation.reset()

    def configure_optimizers(self):
        config = self.hparams.optimizer
        # A fused AdamW unscales fp16 gradients inside its step, after clipping would have
        # needed them unscaled: under 16-mixed's gradient scaler it runs unfused.
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        optimizer = build_optimizer(self.model, config, fused=scaler is None)
        scheduler = build_scheduler(optimizer, config, total_steps=self.trainer.max_steps)
        # Stepped after every optimizer step, not every epoch.
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None,
                                    gradient_clip_algorithm=None) -> None:  # fmt: skip
        # Lightning's mixed precision refuses to clip for a fused optimizer, lest it clip fp16
        # gradients still multiplied by the gradient scaler. bf16-mixed has no scaler: its
        # gradients are the true ones, clipped here. (Under 16-mixed AdamW is not fused.)
        plugin = self.trainer.precision_plugin
        if gradient_clip_val and isinstance(plugin, MixedPrecision) and plugin.scaler is None:
            if gradient_clip_algorithm == GradClipAlgorithmType.VALUE:
                plugin.clip_grad_by_value(optimizer, gradient_clip_val)
            else:
                plugin.clip_grad_by_norm(optimizer, gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    @property
    def chance_loss(self) -> float:
        """The loss of a model that has learned nothing: ln(vocab_size)."""
        return math.log(self.model.config.vocab_size)
