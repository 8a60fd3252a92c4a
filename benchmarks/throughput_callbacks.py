"""What logging the training throughput costs per step: tinylm's TokensPerSecond beside
Lightning's ThroughputMonitor, both in the same run, so that both see the same steps.

    python benchmarks/throughput_callbacks.py --text /work/shared/data/tinyshakespeare.txt

Each callback is timed inside its own per-batch hooks (on_train_batch_start/end), the whole of
what it adds to a step; the table gives the median per step and the mean (which counts the
logging steps, where each computes and logs its figure). The callbacks swap places in the
callback list from one repeat to the next. It also prints the two figures each logged at the
same step (tokens per second), and the rows that each adds to metrics.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import ThroughputMonitor

from tinylm.runs.claim import register_resolvers
from tinylm.training import fit
from tinylm.training.callbacks import TokensPerSecond

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


CREATED: list[TimedHooks] = []  # the timed callbacks, as Hydra instantiates them


class TimedHooks:
    """Mixed into a callback: the seconds its per-batch hooks take, per training batch."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seconds: list[float] = []
        CREATED.append(self)

    def on_train_batch_start(self, *args, **kwargs) -> None:
        started = time.perf_counter()
        super().on_train_batch_start(*args, **kwargs)
        self.seconds.append(time.perf_counter() - started)

    def on_train_batch_end(self, *args, **kwargs) -> None:
        started = time.perf_counter()
        super().on_train_batch_end(*args, **kwargs)
        self.seconds[-1] += time.perf_counter() - started


class TimedTokensPerSecond(TimedHooks, TokensPerSecond):
    pass


class TimedThroughputMonitor(TimedHooks, ThroughputMonitor):
    def __init__(self, window_size: int) -> None:
        # (batch, block_size) inputs and targets: a sample is a window, an item a token.
        super().__init__(
            batch_size_fn=lambda batch: batch[0].size(0),
            length_fn=lambda batch: batch[0].numel(),
            window_size=window_size,
        )

    def on_train_start(self, trainer, pl_module) -> None:
        # Its FLOPs figure reads this attribute at every batch: the model's FLOPs per token
        # times the tokens of a batch.
        batch_tokens = trainer.datamodule.batch_size * pl_module.model.config.block_size
        pl_module.flops_per_batch = pl_module.model.flops_per_token() * batch_tokens
        super().on_train_start(trainer, pl_module)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", required=True)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the run")
    args = parser.parse_args()
    register_resolvers()  # ${run_path:...} in the configs
    log_every = 10
    timed = {"TokensPerSecond": [], "ThroughputMonitor": []}
    print(f"load before: {os.getloadavg()}")
    for repeat in range(args.repeats):
        callbacks = {
            "TokensPerSecond": [f"+callbacks.ours._target_={__name__}.TimedTokensPerSecond"],
            "ThroughputMonitor": [
                f"+callbacks.lightnings._target_={__name__}.TimedThroughputMonitor",
                f"+callbacks.lightnings.window_size={log_every + 1}",  # TokensPerSecond's steps
            ],
        }
        order = list(callbacks) if repeat % 2 == 0 else list(reversed(callbacks))
        with tempfile.TemporaryDirectory() as folder:
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                cfg = compose(
                    "train",
                    overrides=[
                        "model=tiny", "data=text", "tokenizer=char", "hardware=cpu",
                        f"data.path={args.text}", f"paths.output_dir={folder}/run",
                        f"paths.cache_dir={folder}/cache", "trainer.max_steps=300",
                        "trainer.val_check_interval=100", f"trainer.log_every_n_steps={log_every}",
                        "callbacks.tokens_per_sec=null", "callbacks.progress_bar=null",
                        "callbacks.generation_samples=null",
                        *[override for name in order for override in callbacks[name]],
                        *args.overrides,
                    ],
                )  # fmt: skip
            CREATED.clear()
            fit(cfg)
            seconds = {}
            for callback in CREATED:
                name = type(callback).__name__.removeprefix("Timed")
                seconds[name] = callback.seconds[1:]  # the first batch sets up
                timed[name].append(seconds[name])
            with open(Path(folder) / "run" / "csv" / "metrics.csv") as handle:
                rows = list(csv.DictReader(handle))
        print(f"repeat {repeat} (order {order}), load {os.getloadavg()[0]:.2f}:")
        for name, values in seconds.items():
            print(
                f"  {name}: median {statistics.median(values) * 1e6:.1f} µs/step, "
                f"mean {statistics.mean(values) * 1e6:.1f} µs/step over {len(values)} steps"
            )
        ours = {
            r["step"]: float(r["train/tokens_per_sec"])
            for r in rows
            if r.get("train/tokens_per_sec")
        }
        theirs = {
            r["step"]: float(r["train/device/items_per_sec"])
            for r in rows
            if r.get("train/device/items_per_sec")
        }
        ratios = [theirs[step] / ours[step] for step in ours if step in theirs]
        if ratios:
            print(
                f"  ThroughputMonitor / TokensPerSecond at the same step: median "
                f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}, "
                f"{len(ratios)} steps)"
            )
        print(f"  metrics.csv columns: {sorted(rows[0]) if rows else []}")
        validation_rows = [
            r["step"] for r in rows if any(k.startswith("validate") and r[k] for k in r)
        ]
        print(f"  rows with validation throughput, at steps: {validation_rows[:12]} …")
    print(f"load after: {os.getloadavg()}")
    for name, runs in timed.items():
        medians = [statistics.median(values) * 1e6 for values in runs]
        print(f"{name}: median of the repeats' medians {statistics.median(medians):.1f} µs/step")


if __name__ == "__main__":
    main()
