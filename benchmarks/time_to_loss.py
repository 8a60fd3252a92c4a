"""Time to quality: named recipes side by side, each a whole `scripts/train.py` process, and the
wall time and steps each takes until its loss on the WHOLE validation split reaches a target.

    python benchmarks/time_to_loss.py --target 1.9035 --repeats 3 \\
      --recipe gpt2 experiment=nanogpt_shakespeare_char data.path=tinyshakespeare.txt \\
      --recipe modern experiment=nanogpt_shakespeare_char_modern data.path=tinyshakespeare.txt

How it measures (modded-nanogpt's record table, on a CPU):
- Each recipe is composed from conf/train.yaml with its overrides and its data cache built
  before anything is timed; then every recipe runs once per repeat, the recipes taking turns
  (interleaved: a change in the machine's load falls on all of them alike). Repeat r trains with
  seed 1337 + r, the same seed for every recipe of that repeat.
- During a run, a callback saves the model's weights every `--every` optimizer steps with the
  time the step ended. After the run, outside its clock, each snapshot is evaluated on every
  window of the validation split (loss and bits per byte).
- Time to target: from the process's start (Python's start-up and imports included, as `time`
  counts) to the end of the first snapshot's step whose whole-split loss is at or below the
  target, less the seconds spent saving snapshots until then. Its resolution is `--every` steps:
  the target may have been reached up to that many steps earlier.
- CPU time to target: the same in CPU seconds of the process (all its threads). With
  --threads 1 it is what the run would take on an idle core: on a busy machine, where wall times
  count the waits for a core, it is the steadier figure.
- At equal wall time: each recipe's whole-split bits per byte at its last snapshot taken before
  the shortest run (of any recipe) ended.
The table shows medians over the repeats (and every repeat's value in results.json): whole
process wall time, ms/step and tokens/s (medians between consecutive step ends), the share of a
step from the end of backward to the end of the update (clipping and the optimizer), parameters,
final whole-split loss and bits per byte, steps and seconds to the target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # benchmarks.train_speed, when run as a script

from benchmarks.train_speed import (  # noqa: E402
    compose_recipe,
    launch,
    machine_description,
    whole_split_metrics,
)

BASE_SEED = 1337


def evaluate_snapshots(result: dict, datamodule, device: str) -> None:
    """Whole-split loss and bits per byte of every snapshot of a run, added to its records."""
    import torch

    from tinylm.checkpoint import load_checkpoint

    model = load_checkpoint(result["weights"], device).model  # the run's architecture
    result["parameters"] = model.num_parameters()
    for snapshot in result["snapshots"]:
        model.load_state_dict(torch.load(snapshot["path"], weights_only=True))
        metrics = whole_split_metrics(model.eval(), datamodule, device)
        snapshot.update(loss=metrics["loss"], bpb=metrics["bpb"])
        Path(snapshot["path"]).unlink()  # evaluated; a run's snapshots add up to gigabytes


def first_at_target(snapshots: list[dict], target: float) -> dict | None:
    return next((s for s in snapshots if s["loss"] <= target), None)


def last_before(snapshots: list[dict], seconds: float) -> dict | None:
    earlier = [s for s in snapshots if s["time_s"] <= seconds]
    return earlier[-1] if earlier else None


def median_or_none(values: list[float | None]) -> float | None:
    """The median when every repeat has a value; None when any repeat never got one."""
    return None if any(v is None for v in values) else statistics.median(values)


def summarise(results: list[dict], target: float | None, tokens_per_step: dict) -> str:
    by_recipe: dict[str, list[dict]] = {}
    for result in results:
        by_recipe.setdefault(result["recipe"], []).append(result)
    equal_wall = min(r["snapshots"][-1]["time_s"] for r in results)
    columns = ["recipe", "parameters", "wall (s)", "ms/step", "tokens/s", "optimizer share",
               "final val loss", "final val bpb", f"val bpb at {equal_wall:.0f} s"]  # fmt: skip
    if target is not None:
        columns += [f"steps to {target}", f"seconds to {target}", f"CPU s to {target}"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for recipe, runs in by_recipe.items():

        def med(key: str, runs=runs) -> float:
            return statistics.median(r[key] for r in runs)

        at_equal = median_or_none(
            [(last_before(r["snapshots"], equal_wall) or {}).get("bpb") for r in runs]
        )
        share = median_or_none([r["optimizer_share"] for r in runs])
        tokens_per_s = tokens_per_step[recipe] / med("ms_per_step") * 1e3
        cells = [
            recipe, f"{runs[0]['parameters']:,}", f"{med('wall_s'):.1f}",
            f"{med('ms_per_step'):.2f}", f"{tokens_per_s:,.0f}",
            "n/a" if share is None else f"{share:.1%}",
            f"{statistics.median(r['snapshots'][-1]['loss'] for r in runs):.4f}",
            f"{statistics.median(r['snapshots'][-1]['bpb'] for r in runs):.4f}",
            "n/a" if at_equal is None else f"{at_equal:.4f}",
        ]  # fmt: skip
        if target is not None:
            reached = [first_at_target(r["snapshots"], target) for r in runs]
            steps = median_or_none([s and s["step"] for s in reached])
            seconds = median_or_none([s and s["time_s"] for s in reached])
            cpu_seconds = median_or_none([s and s["cpu_s"] for s in reached])
            not_reached = f"not reached ({sum(s is None for s in reached)}/{len(runs)})"
            cells += [not_reached] * 3 if steps is None else [
                f"{steps:.0f}", f"{seconds:.1f}", f"{cpu_seconds:.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--recipe", nargs="+", action="append", required=True, metavar=("NAME", "OVERRIDE"),
        help="a name, then the Hydra overrides of scripts/train.py for that recipe",
    )  # fmt: skip
    parser.add_argument("--target", type=float, help="whole-split validation loss to reach")
    parser.add_argument(
        "--every", action="append", default=[], metavar="[NAME=]N",
        help="snapshot every N optimizer steps (default 50), for every recipe or for NAME's",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every run")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "outputs/benchmarks/ttl")
    args = parser.parse_args()
    recipes = {name: overrides for name, *overrides in args.recipe}
    if len(recipes) != len(args.recipe):
        parser.error("give each --recipe a name of its own")
    every = {name: 50 for name in recipes}
    for setting in args.every:
        name, _, steps = setting.rpartition("=")
        if name and name not in recipes:
            parser.error(f"--every {setting}: no recipe is named {name}")
        every.update({name: int(steps)} if name else dict.fromkeys(recipes, int(steps)))
    args.workdir = args.workdir.resolve()

    import torch
    from hydra.utils import instantiate

    if args.threads:  # the snapshots' evaluation, in this process
        torch.set_num_threads(args.threads)

    hardware = "hardware=gpu" if args.device == "cuda" else "hardware=cpu"
    shared = [hardware, f"paths.cache_dir={args.workdir / 'cache'}"]
    datamodules, tokens_per_step = {}, {}
    for name, overrides in recipes.items():
        cfg = compose_recipe([*overrides, *shared], args.workdir / "compose")
        datamodules[name] = instantiate(cfg.data, _convert_="all")
        datamodules[name].setup("fit")  # the cache every run reads, built before any is timed
        tokens_per_step[name] = datamodules[name].batch_size * cfg.model.block_size
    print(
        f"{machine_description(args.device, args.threads)}; {args.repeats} repeat(s) of "
        f"{', '.join(recipes)}, interleaved; snapshots every "
        f"{every} steps",
        flush=True,
    )
    results = []
    for repeat in range(args.repeats):
        for name, overrides in recipes.items():
            run_dir = args.workdir / "runs" / f"{name}-{repeat}"
            command = [*overrides, *shared, f"seed={BASE_SEED + repeat}"]
            result = launch("pipeline", args, command, {}, run_dir, snapshot_every=every[name])
            result.update(recipe=name, repeat=repeat)
            evaluate_snapshots(result, datamodules[name], args.device)
            results.append(result)
            reached = args.target and first_at_target(result["snapshots"], args.target)
            last = result["snapshots"][-1]
            print(
                f"{name}-{repeat}: wall {result['wall_s']:.1f} s, {result['ms_per_step']:.2f} "
                f"ms/step, final whole-split loss {last['loss']:.4f} (bpb {last['bpb']:.4f})"
                + (f", {args.target} at step {reached['step']} ({reached['time_s']:.1f} s)"
                   if reached else "")
                + f" (load {result['load'][0]:.1f} -> {result['load'][1]:.1f})",
                flush=True,
            )  # fmt: skip
            (args.workdir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nMedians of {args.repeats} run(s) each:\n")
    print(summarise(results, args.target, tokens_per_step))


if __name__ == "__main__":
    main()
