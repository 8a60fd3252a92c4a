"""scripts/compare.py: validation curves of runs on one PNG, and a table, best first."""

import math

import pytest
from omegaconf import OmegaConf

from tests.conftest import compose_config
from tinylm.checkpoint import load_checkpoint
from tinylm.commands.compare import compare
from tinylm.errors import ConfigError, TinyLMError
from tinylm.experiments.compare import draw_curves, find_runs, read_run
from tinylm.model import GPT, GPTConfig
from tinylm.runs.folder import RunFolder


def write_run(folder, overrides, val_losses):
    """A run folder as training leaves it: the CSV logger's metrics and Hydra's overrides."""
    (folder / "csv").mkdir(parents=True)
    rows = ["epoch,step,train/loss,val/loss"]
    for index, loss in enumerate(val_losses):
        step = 10 * (index + 1) - 1  # Lightning logs the validation after step 10 as step 9
        rows += [f"0,{step},{loss + 0.1},", f"0,{step},,{loss}"]
    (folder / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    (folder / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")


def test_compare_draws_every_run_and_ranks_them_by_best_val_loss(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    write_run(sweep / "0", ["model=tiny", "optimizer.lr=0.001"], [3.0, 2.5, 2.6])
    write_run(sweep / "1", ["model=tiny", "optimizer.lr=0.01"], [2.8, 2.2, 2.1])
    write_run(tmp_path / "baseline", ["model=small"], [2.9, 2.4])
    output = tmp_path / "curves.png"

    compare(
        compose_config("compare", f"runs=[{sweep},{tmp_path / 'baseline'}]", f"output={output}")
    )

    lines = capsys.readouterr().out.splitlines()
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:5]]
    assert [row[:4] for row in cells] == [
        ["model=tiny optimizer.lr=0.01", "2.1000", "30", "2.1000"],
        ["model=small", "2.4000", "20", "2.4000"],
        ["model=tiny optimizer.lr=0.001", "2.5000", "20", "2.6000"],
    ]
    assert output.stat().st_size > 10_000
    assert output.with_suffix(".md").read_text().splitlines()[2:5] == lines[2:5]


def test_folders_without_runs_are_a_clear_error(tmp_path):
    output = f"output={tmp_path / 'curves.png'}"
    with pytest.raises(TinyLMError, match="No run with csv/metrics.csv"):
        compare(compose_config("compare", f"runs={tmp_path}", output))
    with pytest.raises(TinyLMError, match="is not a folder"):
        compare(compose_config("compare", f"runs={tmp_path / 'missing'}", output))
    with pytest.raises(ConfigError, match="runs is not set"):
        compare(compose_config("compare", output))


def test_the_plot_shows_training_curves_validation_points_and_chance(trained_run, tmp_path):
    run = read_run(RunFolder(trained_run / "run"))
    assert run.vocab_size == load_checkpoint(trained_run / "run").model.config.vocab_size
    assert len(run.train) > len(run.val) > 0  # logged every 10 steps, validated less often
    write_run(tmp_path / "b", ["model=tiny"], [3.0, 2.5])  # no checkpoint: no vocabulary

    figure = draw_curves([run, read_run(RunFolder(tmp_path / "b"))], ["trained", "b"])
    (axes,) = figure.axes
    train_line, val_line, b_train, b_val = axes.lines[:4]
    assert list(zip(*train_line.get_data(), strict=True)) == run.train
    assert list(zip(*val_line.get_data(), strict=True)) == run.val
    assert train_line.get_color() == val_line.get_color() != b_val.get_color()
    (chance,) = [line for line in axes.lines[4:] if line.get_linestyle() == ":"]
    assert chance.get_ydata()[0] == pytest.approx(math.log(run.vocab_size))
    notes = [text.get_text() for text in axes.texts]
    assert notes == [f"chance: ln {run.vocab_size} = {math.log(run.vocab_size):.2f}"]


def test_identical_runs_stay_visible_and_named_with_their_loss(tmp_path):
    for name in ("a", "b", "c"):  # three runs with exactly the same curve
        write_run(tmp_path / name, [f"name={name}"], [3.0, 2.5, 2.4])
    runs = find_runs([str(tmp_path)])
    figure = draw_curves(runs, ["name=a", "name=b", "name=c"])
    (axes,) = figure.axes
    val_lines = [line for line in axes.lines if line.get_marker() not in ("None", None, "")]
    styles = {(line.get_marker(), line.get_linestyle(), line.get_color()) for line in val_lines}
    assert len(val_lines) == 3 and len(styles) == 3
    assert len({line.get_marker() for line in val_lines}) == 3
    assert len({line.get_linestyle() for line in val_lines}) == 3
    assert len({line.get_markersize() for line in val_lines}) == 3  # nested, hollow markers
    assert {line.get_markerfacecolor() for line in val_lines} == {"none"}
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["name=a (best 2.400)", "name=b (best 2.400)", "name=c (best 2.400)"]


def test_the_table_gives_bpb_throughput_parameters_and_steps_and_seconds_to_a_target(
    tmp_path, capsys
):
    model = {"vocab_size": 65, "block_size": 16, "n_layer": 1, "n_head": 2, "d_model": 8,
             "d_ff": 16}  # fmt: skip
    runs = {}
    for name, losses in (("fast", [2.5, 1.9, 1.7]), ("slow", [2.8, 2.4, 2.0])):
        folder = runs[name] = tmp_path / "sweep" / name
        write_run(folder, [f"+ablation={name}"], losses)
        (folder / "csv" / "metrics.csv").write_text(
            "epoch,step,train/loss,train/tokens_per_sec,val/loss,val/bpb\n"
            + "".join(f"0,{10 * i + 9},3.0,{tps},,\n" for i, tps in enumerate((900, 1000, 1100)))
            + "".join(f"0,{10 * i + 9},,,{loss},{loss * 1.5}\n" for i, loss in enumerate(losses))
        )
        OmegaConf.save(OmegaConf.create({"model_config": model}), folder / "csv" / "hparams.yaml")
        (folder / "result.json").write_text('{"seconds": 60.0, "steps": 30}')

    compare(compose_config("compare", f"runs={tmp_path / 'sweep'}", "target=2.0",
                           f"output={tmp_path / 'curves.png'}"))  # fmt: skip

    lines = capsys.readouterr().out.splitlines()
    header = [cell.strip() for cell in lines[0].split("|")[1:-1]]
    assert header[4:9] == ["final val/bpb", "tokens/s", "parameters", "steps to 2.0",
                           "s to 2.0 (pro rata)"]  # fmt: skip
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:4]]
    parameters = f"{GPT(GPTConfig(**model)).num_parameters():,}"
    assert [row[:9] for row in cells] == [
        ["+ablation=fast", "1.7000", "30", "1.7000", "2.5500", "1,000", parameters, "20", "40.0"],
        ["+ablation=slow", "2.0000", "30", "2.0000", "3.0000", "1,000", parameters, "30", "60.0"],
    ]


def test_runs_of_several_seeds_get_a_table_of_means_spreads_and_paired_differences(
    tmp_path, capsys
):
    finals = {("none", 1): 2.0, ("none", 2): 2.2, ("rope", 1): 1.8, ("rope", 2): 2.1}
    for (name, seed), final in finals.items():
        folder = tmp_path / f"sweep_seed{seed}" / name
        write_run(folder, [f"+ablation={name}", f"seed={seed}"], [2.6, final])
        OmegaConf.save(OmegaConf.create({"seed": seed}), folder / ".hydra" / "config.yaml")

    table = compare(compose_config("compare", f"runs={tmp_path}", "target=2.05", "baseline=none",
                                   f"output={tmp_path / 'curves.png'}"))  # fmt: skip

    per_run, over_seeds = table.split("\n\n")
    assert len(per_run.splitlines()) == 2 + 4  # every run, each seed its own row
    header, _, *rows = ([cell.strip() for cell in line.split("|")[1:-1]]
                        for line in over_seeds.splitlines())  # fmt: skip
    assert header[:8] == ["setting", "seeds", "final val/loss: mean", "spread",
                          "− +ablation=none: mean (paired)", "spread", "final val/bpb: mean",
                          "spread"]  # fmt: skip
    assert header[8:10] == ["steps to 2.05 (each seed)", "s to 2.05 (median)"]
    # rope: finals 1.8 and 2.1; seed by seed 0.2 and 0.1 below the baseline's 2.0 and 2.2.
    assert [row[:6] + row[8:10] for row in rows] == [
        ["+ablation=rope", "1, 2", "1.9500", "0.3000", "-0.1500", "0.1000", "20 / -", "-"],
        ["+ablation=none", "1, 2", "2.1000", "0.2000", "+0.0000", "0.0000", "20 / -", "-"],
    ]


def test_a_baseline_that_names_no_setting_or_several_is_a_clear_error(tmp_path):
    for name, override in (("a", "+ablation=none"), ("b", "+x=rope"), ("c", "+y=rope")):
        write_run(tmp_path / name, [override], [2.0])
    output = f"output={tmp_path / 'curves.png'}"
    with pytest.raises(ConfigError, match="baseline=gelu names none of the settings"):
        compare(compose_config("compare", f"runs={tmp_path}", "baseline=gelu", output))
    with pytest.raises(ConfigError, match="baseline=rope names several"):
        compare(compose_config("compare", f"runs={tmp_path}", "baseline=rope", output))
    assert not (tmp_path / "curves.png").exists()  # refused before anything is drawn
