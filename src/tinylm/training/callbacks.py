"""Callbacks: tokens per second, a progress bar that knows the run's length, generated samples.
(The loss curve, a file of the run folder, is tinylm.runs.loss_curve's.)"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

import torch
from lightning.fabric.utilities.throughput import get_available_flops
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm, convert_inf
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.utilities import rank_zero_only

from tinylm.errors import TinyLMError
from tinylm.generation import GenerationSettings, encode_prompt, generate
from tinylm.runs.logging_steps import at_logging_step
from tinylm.tokenizers import tokenizer_from_state
from tinylm.utils.files import append_jsonl

log = logging.getLogger(__name__)


class TokensPerSecond(Callback):
    """Logs `train/tokens_per_sec`: tokens trained on by all devices per wall-clock second,
    averaged over each logging window, with validation time left out.

    On a GPU whose peak FLOP/s Lightning knows, it also logs `train/mfu`, the model FLOPs
    utilisation: the model's FLOPs per token (GPT.flops_per_token) times tokens per second,
    as a share of the peak of all devices at the training precision.

    Why not Lightning's ThroughputMonitor (2.6), measured beside this one in the same runs
    (benchmarks/throughput_callbacks.py, tiny model on the CPU, load average 23 on 2 cores): it
    logs the same figure (median ratio 0.999 at the same steps), but its hooks take a median
    97 µs per step against 9 µs here; on CUDA it also synchronizes at every batch, the wait
    for the GPU that training avoids (tinylm.runs.logging_steps); and it logs validation's
    throughput at every validation batch with its count of validation batches as the step, so
    metrics.csv gets rows that are no optimizer step's (51, 52, 53, … in a 200-step run).
    """

    def __init__(self) -> None:
        self.window_start: float | None = None
        self.window_tokens = 0
        self.peak_flops: float | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        device_peak = get_available_flops(
            trainer.strategy.root_device, compute_dtype(str(trainer.precision))
        )
        if device_peak is not None:
            self.peak_flops = device_peak * trainer.world_size

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.window_start is None:
            self.window_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.window_tokens += batch[0].numel() * trainer.world_size
        if at_logging_step(trainer, batch_idx):
            tokens_per_sec = self.window_tokens / (time.perf_counter() - self.window_start)
            pl_module.log("train/tokens_per_sec", tokens_per_sec)
            if self.peak_flops is not None:
                flops = pl_module.model.flops_per_token() * tokens_per_sec
                pl_module.log("train/mfu", flops / self.peak_flops)
            self.window_start, self.window_tokens = None, 0

    def on_validation_end(self, trainer, pl_module) -> None:
        self.window_start, self.window_tokens = None, 0


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype the matmuls run in at a Lightning precision such as "bf16-mixed"."""
    if precision.startswith("bf16"):
        return torch.bfloat16
    if precision.startswith("16"):
        return torch.float16
    return torch.float32


class StepProgressBar(TQDMProgressBar):
    """Training batches never run out (an endless epoch), so Lightning's bar has no total;
    this one counts towards max_steps × accumulate_grad_batches, also in a resumed run.

    It shows the training loss as of the last logging step: the loss is no progress-bar metric,
    which Lightning would read off the device after every batch. And it is redrawn at most
    every REDRAW_SECONDS: Lightning's bar redraws twice per batch, about 1 ms of an 85 ms step
    of nanoGPT's Shakespeare model on the CPU, and more of a short step on a GPU.
    """

    REDRAW_SECONDS = 0.5

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.train_loss: float | None = None
        self.last_redraw = -math.inf

    @property
    def total_train_batches(self) -> int | float:
        trainer = self.trainer
        if trainer.max_steps > 0:
            return trainer.max_steps * trainer.accumulate_grad_batches
        return super().total_train_batches

    def init_train_tqdm(self) -> Tqdm:
        """Lightning's training bar, made with its total and position: Lightning sets them when
        an epoch starts, and a resumed run starts inside its one endless epoch, without that
        call. Starting at the micro-batch it resumes from, the bar's rate counts this process's
        batches only."""
        trainer = self.trainer
        return Tqdm(
            desc=f"Epoch {trainer.current_epoch}",
            total=convert_inf(self.total_train_batches),
            initial=trainer.global_step * trainer.accumulate_grad_batches,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.train_loss is None or at_logging_step(trainer, batch_idx):
            loss = getattr(pl_module, "train_loss", None)
            if loss is not None:
                self.train_loss = float(loss)
        now = time.monotonic()
        last_batch = trainer.should_stop or 0 < trainer.max_steps <= trainer.global_step
        if now - self.last_redraw >= self.REDRAW_SECONDS or last_batch:  # the end is shown
            self.last_redraw = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        if self.train_loss is not None:
            metrics["train/loss"] = f"{self.train_loss:.3f}"
        return metrics


class GenerationSamples(Callback):
    """At every validation, continues a few fixed prompts with the current weights and logs
    the text, so a user watches the generations improve: on the console, in each logger that
    shows text (a wandb table, TensorBoard's text tab), and as JSON lines in `path` (the CSV
    logger has no text facility).

    Cheap by design: a few prompts, a few dozen tokens, the KV cache, rank zero only. Sampling
    restarts from `seed` at every validation, so successive samples differ only by the model.
    A prompt the tokenizer cannot encode is skipped with a warning rather than stopping a run.
    """

    def __init__(
        self,
        prompts: list[str],
        max_new_tokens: int = 32,
        temperature: float = 0.8,
        seed: int = 0,
        path: str | None = None,
    ) -> None:
        self.prompts = list(prompts)
        self.settings = GenerationSettings(
            strategy="sample", max_new_tokens=max_new_tokens, temperature=temperature
        )
        self.seed = seed
        self.path = Path(path) if path else None
        self.tokenizer = None  # the run's, known once fitting starts
        self.prompt_ids: dict[str, list[int]] = {}  # the prompts it can encode

    @rank_zero_only
    def on_fit_start(self, trainer, pl_module) -> None:
        if isinstance(trainer.strategy, FSDPStrategy):
            # Each forward pass gathers the shards from every rank: rank zero cannot run one alone.
            log.warning("Generation samples are off under FSDP (hardware=fsdp).")
            return
        self.tokenizer = tokenizer_from_state(pl_module.hparams.tokenizer_state)
        for prompt in self.prompts:
            try:
                ids = encode_prompt(self.tokenizer, prompt, pl_module.model.config.block_size)
            except TinyLMError as error:
                log.warning(f"Generation samples leave out the prompt {prompt!r}: {error}")
                continue
            self.prompt_ids[prompt] = ids

    @rank_zero_only
    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self.prompt_ids:
            return
        loss = trainer.callback_metrics.get("val/loss")
        if loss is not None and not torch.isfinite(loss):
            return  # a diverged model has no distribution to sample from (the run stops)
        step = trainer.global_step
        # Validation has put the model in eval mode; Lightning restores train mode after this.
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        samples = []
        for prompt, ids in self.prompt_ids.items():
            (completion,) = generate(
                pl_module.model, ids, self.settings, self.tokenizer.eos_id, generator
            )
            samples.append((prompt, self.tokenizer.decode(completion.tokens)))
        log.info(f"Samples at step {step}:")
        for prompt, text in samples:
            log.info(f"  {prompt!r} -> {text!r}")
        log_samples(trainer.loggers, step, samples)
        if self.path is not None:
            records = [{"step": step, "prompt": p, "text": t} for p, t in samples]
            append_jsonl(self.path, records)


def log_samples(loggers: list, step: int, samples: list[tuple[str, str]]) -> None:
    """Hand (prompt, continuation) pairs to every logger that has a place for text."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            rows = [[step, prompt, text] for prompt, text in samples]
            logger.log_text(key="samples", columns=["step", "prompt", "text"], data=rows, step=step)
        elif isinstance(logger, TensorBoardLogger):
            for number, (prompt, text) in enumerate(samples):
                # TensorBoard renders markdown: a code block keeps the text's own line breaks.
                logger.experiment.add_text(f"samples/{number}", f"```\n{prompt}{text}\n```", step)
