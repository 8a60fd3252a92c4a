"""The LightningModule: a GPT, next-token cross-entropy, AdamW with warmup + cosine."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from tinylm.bits_per_byte import BitsPerByte
from tinylm.model import GPT, GPTConfig
from tinylm.tokenizers import tokenizer_from_state
from tinylm.training.optim import build_optimizer, build_scheduler


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every position: logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


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
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = GPT(GPTConfig(**model_config))
        # Token-weighted means over a whole validation pass (synchronised across devices).
        self.val_loss = MeanMetric()
        self.val_acc = MeanMetric()
        self.val_bpb = BitsPerByte(tokenizer_from_state(tokenizer_state).token_byte_lengths())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch  # (B, T) each
        loss = next_token_loss(self.model(x), y)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/lr", self.lr_schedulers().get_last_lr()[0])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # Lightning validates when a run asks to stop, not when max_steps ends it: asking
        # at the last step gives every run a final val/loss (and a checkpoint after it).
        if self.global_step >= self.trainer.max_steps > 0:
            self.trainer.should_stop = True

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.model(x)
        # (B·T,): one loss per target, for the mean and for bits per byte
        token_losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        self.val_loss.update(token_losses.mean(), weight=y.numel())
        self.val_bpb.update(token_losses, y.flatten())
        self.val_acc.update((logits.argmax(dim=-1) == y).float().mean(), weight=y.numel())

    def on_validation_epoch_end(self) -> None:
        # compute() has already averaged over all devices; sync_dist=True says so to Lightning
        # (which warns otherwise) at the cost of averaging identical numbers once more.
        loss = self.val_loss.compute()
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        self.log("val/ppl", torch.exp(loss), sync_dist=True)
        self.log("val/acc", self.val_acc.compute(), sync_dist=True)
        self.log("val/bpb", self.val_bpb.compute(), sync_dist=True)  # comparable across tokenizers
        self.val_loss.reset()
        self.val_acc.reset()
        self.val_bpb.reset()

    def configure_optimizers(self):
        config = self.hparams.optimizer
        optimizer = build_optimizer(self.model, config, fused=self.device.type == "cuda")
        scheduler = build_scheduler(optimizer, config, total_steps=self.trainer.max_steps)
        # Stepped after every optimizer step, not every epoch.
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    @property
    def chance_loss(self) -> float:
        """The loss of a model that has learned nothing: ln(vocab_size)."""
        return math.log(self.model.config.vocab_size)
