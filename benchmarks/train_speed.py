"""Training speed of one recipe, run three ways: a minimal hand-written PyTorch loop over tinylm's
GPT, the full `scripts/train.py` pipeline, and the pipeline with compile=true.

    python benchmarks/train_speed.py --text /work/shared/data/tinyshakespeare.txt
    python benchmarks/train_speed.py --text tinyshakespeare.txt --repeats 3 trainer.max_steps=500
    # GPT-2 124M on a GPU, bf16, context 1024, random tokens of GPT-2's vocabulary size:
    python benchmarks/train_speed.py --device cuda --synthetic-vocab 50257 --experiment none \\
        model=gpt2 data.batch_size=16 trainer.max_steps=200 trainer.val_check_interval=100 \\
        trainer.limit_val_batches=10 optimizer.warmup_steps=20

The recipe is a Hydra config: `--experiment` (default nanogpt_shakespeare_char, nanoGPT's own
CPU recipe) plus any overrides given after the options, composed from conf/train.yaml exactly as
scripts/train.py composes it; the loop reads its model, batch, steps, optimizer, schedule,
clipping and validation settings from that same config. Both train on the same batches from the
same initial weights (tinylm's RandomWindows, the run's seed), so they should end with the same
validation loss.

Each run is a process of its own; the variants take turns, `--repeats` times (interleaved, so a
change in the machine's load falls on all of them alike), and the table shows medians over the
repeats. Per variant:
  wall           the whole process, start-up and shut-down included, as `time` would report it;
  CPU            the CPU time of that process (user + system, all its threads);
  to 1st step    process start to the end of the first optimizer step (compiling included);
  ms/step        median time between the ends of consecutive optimizer steps (a step that
                 includes a validation is an outlier the median leaves out);
  CPU ms/step    the same in CPU time of the process. With --threads 1 it is the step time
                 the process would take on an idle core: on a busy machine, where wall times
                 also count the waits for a core, it is the steadier figure to compare;
  tokens/s       batch × context / ms/step;
  peak RSS       the process's maximum resident memory (and peak GPU memory on CUDA);
  MFU            on a GPU whose peak Lightning knows, at the precision of the run, or of
                 --peak-tflops (Lightning's table has no plain "NVIDIA H200");
  val loss       the final weights on the whole validation split (not only the batches that
                 validation used during training).
The load average is printed before and after each run: on a shared machine, compare runs taken
at the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "loop": "hand-written loop",
    "loop-compiled": "hand-written loop, compiled",
    "pipeline": "scripts/train.py",
    "pipeline-compiled": "scripts/train.py compile=true",
}
DEFAULT_VARIANTS = ["loop", "pipeline", "pipeline-compiled"]


class StepClock:
    """When each optimizer step of a run ended, written as JSON for the benchmark to read.

    On a GPU the clock does not wait for the device after each step (that would stall the
    pipeline it measures): the host runs at most a few steps ahead before the launch queue is
    full, so the steady-state time between step ends is the device's time per step.
    """

    def __init__(self, path: str, synchronize: Callable[[], None] | None = None) -> None:
        self.path = path
        self.synchronize = synchronize
        self.step_ends: list[float] = []  # time.perf_counter() at the end of each step
        self.step_cpu_ends: list[float] = []  # time.process_time(): CPU seconds of the process
        self.first_step_end: float | None = None  # time.time(): comparable across processes

    def step_done(self) -> None:
        if self.first_step_end is None:
            if self.synchronize is not None:
                self.synchronize()  # the first step really done, compiling included
            self.first_step_end = time.time()
        self.step_ends.append(time.perf_counter())
        self.step_cpu_ends.append(time.process_time())

    def write(self, **extra) -> None:
        record = {
            "first_step_end": self.first_step_end,
            "step_ends": self.step_ends,
            "step_cpu_ends": self.step_cpu_ends,
            **extra,
        }
        Path(self.path).write_text(json.dumps(record))


# ---------------------------------------------------------------------------------------------
# The hand-written loop: a process of its own, started by the benchmark with a JSON spec.


def run_loop(spec: dict, clock_path: str, compiled: bool) -> None:
    """Train as spec says with nothing but PyTorch around tinylm's GPT, as nanoGPT's train.py
    does: forward, cross-entropy, backward, clip, AdamW step, schedule; validation every
    val_every steps on val_batches batches. Saves the final weights to spec["weights"]."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from tinylm.data.windows import RandomWindows
    from tinylm.model import GPT, GPTConfig
    from tinylm.training.optim import build_optimizer, build_scheduler

    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    torch.manual_seed(spec["seed"])  # the pipeline's initial weights (L.seed_everything)
    model = GPT(GPTConfig(**spec["model"])).to(device)
    optimizer = build_optimizer(model, spec["optimizer"])
    scheduler = build_scheduler(optimizer, spec["optimizer"], total_steps=spec["steps"])
    step_model = torch.compile(model) if compiled else model
    train_tokens = np.memmap(spec["train_bin"], dtype=spec["dtype"], mode="r")
    val_tokens = np.memmap(spec["val_bin"], dtype=spec["dtype"], mode="r")
    block, batch = spec["block_size"], spec["batch_size"]
    windows = RandomWindows(train_tokens, block_size=block, batch_size=batch, seed=spec["seed"])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec["bf16"])
    clock = StepClock(clock_path, torch.cuda.synchronize if cuda else None)

    def to_device(t: torch.Tensor) -> torch.Tensor:
        return t.pin_memory().to(device, non_blocking=True) if cuda else t

    @torch.no_grad()
    def validate() -> None:
        model.eval()
        for i in range(spec["val_batches"]):
            start = i * batch * block
            if start + batch * block + 1 > len(val_tokens):
                break
            chunk = torch.from_numpy(val_tokens[start : start + batch * block + 1].astype(np.int64))
            x, y = chunk[:-1].view(batch, block), chunk[1:].view(batch, block)
            with autocast:
                F.cross_entropy(step_model(to_device(x)).flatten(0, 1), to_device(y).flatten())
        model.train()

    for step in range(spec["steps"]):
        x, y = (to_device(t) for t in windows.batch(step))  # (B, T) each
        with autocast:
            loss = F.cross_entropy(step_model(x).flatten(0, 1), y.flatten())
        loss.backward()
        if spec["clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec["clip"])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        clock.step_done()
        if (step + 1) % spec["val_every"] == 0 or step + 1 == spec["steps"]:
            validate()
    torch.save(model.state_dict(), spec["weights"])
    clock.write(gpu_peak_bytes=torch.cuda.max_memory_allocated() if cuda else None)


# ---------------------------------------------------------------------------------------------
# The benchmark: compose the recipe, prepare its data once, run the variants, summarise.


def compose_recipe(overrides: list[str], workdir: Path):
    """conf/train.yaml with the recipe's overrides, as scripts/train.py composes it."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[*overrides, f"paths.output_dir={workdir}"])


def recipe_overrides(args: argparse.Namespace, data_overrides: list[str]) -> list[str]:
    """The overrides every variant shares (the pipeline's command line, less its own)."""
    experiment = [] if args.experiment == "none" else [f"experiment={args.experiment}"]
    hardware = "hardware=gpu" if args.device == "cuda" else "hardware=cpu"
    cache = f"paths.cache_dir={args.workdir / 'cache'}"
    return [*experiment, *data_overrides, hardware, cache, *args.overrides]


def write_synthetic_text(path: Path, vocab_size: int, length: int) -> None:
    """Random characters from an alphabet of vocab_size - 2 printable characters and the newline:
    with the char tokenizer's end-of-text token, a vocabulary of exactly vocab_size tokens."""
    import numpy as np

    printable = (chr(c) for c in range(0x100, 0x110000) if not 0xD800 <= c < 0xE000)
    alphabet = []
    for char in printable:
        if char.isprintable() and not char.isspace():
            alphabet.append(char)
            if len(alphabet) == vocab_size - 2:
                break
    alphabet.append("\n")
    rng = np.random.default_rng(0)
    # Every character at least once, so the tokenizer learns the whole alphabet.
    ids = np.concatenate([rng.permutation(len(alphabet)), rng.integers(0, len(alphabet), length)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(np.array(alphabet)[ids]), encoding="utf-8")


def loop_spec(cfg, datamodule, workdir: Path, run_name: str, device: str) -> dict:
    from omegaconf import OmegaConf

    from tinylm.training.hardware import trainer_kwargs

    precision = str(trainer_kwargs(cfg)["precision"])
    folder = datamodule.cache.folder
    return {
        "device": device,
        "seed": cfg.seed,
        "model": {
            "vocab_size": datamodule.tokenizer.vocab_size,
            **OmegaConf.to_container(cfg.model, resolve=True),
        },
        "optimizer": OmegaConf.to_container(cfg.optimizer, resolve=True),
        "steps": cfg.trainer.max_steps,
        "batch_size": datamodule.batch_size,
        "block_size": cfg.model.block_size,
        "clip": cfg.trainer.gradient_clip_val,
        "val_every": cfg.trainer.val_check_interval,
        "val_batches": cfg.trainer.limit_val_batches,
        "bf16": precision.startswith("bf16"),
        "train_bin": str(folder / "train.bin"),
        "val_bin": str(folder / "val.bin"),
        "dtype": datamodule.cache.meta["dtype"],
        "weights": str(workdir / "runs" / run_name / "weights.pt"),
    }


def launch(
    variant: str, args, overrides: list[str], spec: dict, run_dir: Path, snapshot_every: int = 0
) -> dict:
    """Run one variant in a process of its own; its wall time, peak RSS and step clock (and,
    for a pipeline run with `snapshot_every`, its weights every that many steps)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    clock_path = run_dir / "clock.json"
    if variant.startswith("loop"):
        spec_path = run_dir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        command = [sys.executable, __file__, "--loop-worker", str(spec_path), str(clock_path)]
        command += ["--compile"] if variant == "loop-compiled" else []
    else:
        compile_flag = "true" if variant == "pipeline-compiled" else "false"
        command = [
            sys.executable, str(REPO_ROOT / "scripts" / "train.py"), *overrides,
            f"compile={compile_flag}", f"hydra.run.dir={run_dir}",
            "+callbacks.step_clock._target_=benchmarks.pipeline_clock.StepClockCallback",
            f"+callbacks.step_clock.path={clock_path}",
            f"+callbacks.step_clock.snapshot_every={snapshot_every}",
            f"+callbacks.step_clock.snapshot_dir={run_dir / 'snapshots'}",
        ]  # fmt: skip
    # The repository root for benchmarks.pipeline_clock, ahead of whatever the caller set.
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "PYTHONPATH": python_path}
    if args.threads:
        environment["OMP_NUM_THREADS"] = str(args.threads)
    load_before = os.getloadavg()[0]
    with open(run_dir / "output.log", "w") as log:
        started = time.time()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                   env=environment)  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.time() - started
    if os.waitstatus_to_exitcode(status) != 0:
        log_tail = (run_dir / "output.log").read_text(errors="replace").splitlines()[-30:]
        raise SystemExit("\n".join([*log_tail, f"{variant} failed; see {run_dir / 'output.log'}"]))
    clock = json.loads(clock_path.read_text())
    weights = spec["weights"] if variant.startswith("loop") else run_dir / "checkpoints/last.ckpt"
    return {
        "variant": variant,
        "wall_s": wall,
        "to_first_step_s": clock["first_step_end"] - started,
        "ms_per_step": 1e3 * median_difference(clock["step_ends"]),
        "cpu_ms_per_step": 1e3 * median_difference(clock["step_cpu_ends"]),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "gpu_peak_mib": (clock["gpu_peak_bytes"] or 0) / 2**20 or None,
        "load": (load_before, os.getloadavg()[0]),
        "weights": str(weights),
        "optimizer_share": optimizer_share(clock),
        # Seconds from the process's start to the end of each snapshot's step (wall, and CPU
        # time of the process), less the time spent saving the snapshots before it.
        "snapshots": [
            {
                "step": s["step"],
                "time_s": s["time"] - started - s["saving_s"],
                "cpu_s": s["cpu"] - s["saving_cpu_s"],
                "path": str(run_dir / "snapshots" / f"step{s['step']:07d}.pt"),
            }
            for s in clock.get("snapshots", [])
        ],  # fmt: skip
    }


def optimizer_share(clock: dict) -> float | None:
    """Median share of a step spent from the end of backward to the end of the step (gradient
    clipping and the optimizer's update), for the runs whose clock recorded it."""
    starts, ends = clock.get("optimizer_starts"), clock["step_ends"]
    if not starts or len(starts) != len(ends):
        return None
    return statistics.median(
        (end - start) / (end - previous)
        for start, end, previous in zip(starts[1:], ends[1:], ends, strict=False)
    )


def machine_description(device: str, threads: int | None) -> str:
    import torch

    processor = platform.processor() or platform.machine()
    return (
        f"torch {torch.__version__}, {device} ({processor}, {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={threads or 'unset'})"
    )


def median_difference(times: list[float]) -> float:
    return statistics.median(b - a for a, b in zip(times, times[1:], strict=False))


def whole_split_val_loss(result: dict, spec: dict, datamodule, device: str) -> float:
    import torch

    from tinylm.checkpoint import load_checkpoint
    from tinylm.model import GPT, GPTConfig

    if result["variant"].startswith("loop"):
        model = GPT(GPTConfig(**spec["model"]))
        model.load_state_dict(torch.load(result["weights"], weights_only=True))
        model = model.to(device).eval()
    else:
        model = load_checkpoint(result["weights"], device).model
    return whole_split_metrics(model, datamodule, device)["loss"]


def whole_split_metrics(model, datamodule, device: str) -> dict:
    """Loss, bits per byte and accuracy of `model` on every window of the validation split."""
    import torch
    from torch.utils.data import DataLoader

    from tinylm.data.windows import SequentialWindows
    from tinylm.evaluation import evaluate_model

    windows = SequentialWindows(datamodule.cache.tokens("val"), datamodule.block_size)
    batches = DataLoader(windows, batch_size=datamodule.batch_size)
    byte_lengths = datamodule.tokenizer.token_byte_lengths()
    return evaluate_model(model, batches, None, torch.device(device), byte_lengths)


def model_flops_utilisation(
    spec: dict, tokens_per_sec: float, device: str, peak_tflops: float | None
) -> float | None:
    import torch
    from lightning.fabric.utilities.throughput import get_available_flops

    from tinylm.model import GPT, GPTConfig

    dtype = torch.bfloat16 if spec["bf16"] else torch.float32
    peak = peak_tflops * 1e12 if peak_tflops else get_available_flops(torch.device(device), dtype)
    if peak is None:
        return None
    with torch.device("meta"):
        flops_per_token = GPT(GPTConfig(**spec["model"])).flops_per_token()
    return flops_per_token * tokens_per_sec / peak


def summarise(results: list[dict], spec: dict, device: str, peak_tflops: float | None) -> str:
    tokens_per_step = spec["batch_size"] * spec["block_size"]
    by_variant: dict[str, list[dict]] = {}
    for result in results:
        by_variant.setdefault(result["variant"], []).append(result)

    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in by_variant[variant])

    gpu = device == "cuda"
    columns = ["variant", "wall (s)", "CPU (s)", "to 1st step (s)", "ms/step", "CPU ms/step"]
    columns += ["tokens/s", "peak RSS (MiB)"]
    columns += ["GPU memory (MiB)", "MFU"] if gpu else []
    columns += ["val loss"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for variant in by_variant:
        ms = median(variant, "ms_per_step")
        tokens_per_sec = tokens_per_step / ms * 1e3
        row = (
            f"| {VARIANTS[variant]} | {median(variant, 'wall_s'):.1f} | "
            f"{median(variant, 'cpu_s'):.1f} | {median(variant, 'to_first_step_s'):.1f} | "
            f"{ms:.2f} | {median(variant, 'cpu_ms_per_step'):.2f} | {tokens_per_sec:,.0f} | "
            f"{median(variant, 'peak_rss_mib'):,.0f} |"
        )
        if gpu:
            mfu = model_flops_utilisation(spec, tokens_per_sec, device, peak_tflops)
            mfu_text = f"{mfu:.1%}" if mfu is not None else "n/a"
            row += f" {median(variant, 'gpu_peak_mib'):,.0f} | {mfu_text} |"
        lines.append(row + f" {median(variant, 'val_loss'):.4f} |")
    if "loop" in by_variant:
        lines.append("")
        for variant in by_variant:
            if variant != "loop":
                ratios = ", ".join(
                    f"{label} {median(variant, key) / median('loop', key):.3f}"
                    for label, key in (("wall", "wall_s"), ("CPU", "cpu_s"),
                                       ("ms/step", "ms_per_step"),
                                       ("CPU ms/step", "cpu_ms_per_step"),
                                       ("peak RSS", "peak_rss_mib"))
                )  # fmt: skip
                lines.append(f"{VARIANTS[variant]} / hand-written loop: {ratios}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the recipe")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--text", type=Path, help="a text file to train on, char-level")
    source.add_argument("--synthetic-vocab", type=int, help="random text of this many tokens")
    parser.add_argument("--synthetic-chars", type=int, default=4_000_000)
    parser.add_argument("--experiment", default="nanogpt_shakespeare_char", help="or none")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated: {list(VARIANTS)}"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every run")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's peak, for MFU")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "outputs/benchmarks/train")
    parser.add_argument("--loop-worker", nargs=2, metavar=("SPEC", "CLOCK"), help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop_worker:
        spec_path, clock_path = args.loop_worker
        run_loop(json.loads(Path(spec_path).read_text()), clock_path, args.compile)
        return
    if args.text is None and args.synthetic_vocab is None:
        parser.error("give --text PATH or --synthetic-vocab N")
    args.variants = args.variants.split(",")
    if unknown := set(args.variants) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")

    from hydra.utils import instantiate

    args.workdir = args.workdir.resolve()
    if args.synthetic_vocab:
        text = args.workdir / f"synthetic-{args.synthetic_vocab}-{args.synthetic_chars}.txt"
        if not text.exists():
            write_synthetic_text(text, args.synthetic_vocab, args.synthetic_chars)
    else:
        text = args.text.resolve()
    data_overrides = ["data=text", "tokenizer=char", f"data.path={text}"]
    overrides = recipe_overrides(args, data_overrides)
    cfg = compose_recipe(overrides, args.workdir)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")  # the cache every run reads, built before any is timed

    print(
        f"{machine_description(args.device, args.threads)}; recipe: {' '.join(overrides)}\n"
        f"{cfg.trainer.max_steps} steps of {datamodule.batch_size} × {cfg.model.block_size} "
        f"tokens; {args.repeats} repeat(s) of {', '.join(args.variants)}, interleaved\n",
        flush=True,
    )
    results = []
    for repeat in range(args.repeats):
        for variant in args.variants:
            run_name = f"{variant}-{repeat}"
            spec = loop_spec(cfg, datamodule, args.workdir, run_name, args.device)
            result = launch(variant, args, overrides, spec, args.workdir / "runs" / run_name)
            result["val_loss"] = whole_split_val_loss(result, spec, datamodule, args.device)
            results.append(result)
            print(
                f"{run_name}: wall {result['wall_s']:.1f} s (CPU {result['cpu_s']:.1f} s), first "
                f"step at {result['to_first_step_s']:.1f} s, {result['ms_per_step']:.2f} ms/step "
                f"(CPU {result['cpu_ms_per_step']:.2f}), peak RSS {result['peak_rss_mib']:.0f} "
                f"MiB, val loss {result['val_loss']:.4f} "
                f"(load {result['load'][0]:.1f} -> {result['load'][1]:.1f})",
                flush=True,
            )
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nMedians of {args.repeats} run(s) each:\n")
    print(summarise(results, spec, args.device, args.peak_tflops))


if __name__ == "__main__":
    main()
