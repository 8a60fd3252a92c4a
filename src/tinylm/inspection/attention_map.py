"""Drawing attention weights as heat maps: one per layer and head, query × key.

Row i of a map is query i (the token doing the looking), column j is key j (the token looked
at); its colour is the weight, from 0 to 1. Every row sums to 1, and the triangle above the
diagonal is 0: the causal mask keeps a token from looking ahead. Tokens label the axes when
they fit.
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from tinylm.checkpoint import LoadedCheckpoint
from tinylm.errors import ConfigError
from tinylm.runs.folder import run_folder_of
from tinylm.tokenizers import Tokenizer
from tinylm.utils.files import atomic_write

GRID_INCHES = 16.0  # the larger side of a grid of maps, at most
MIN_LABEL_POINTS = 6.0  # smallest readable tick label; tokens are left out below it
TITLE_PROMPT_CHARS = 60


def token_labels(tokenizer: Tokenizer, ids: list[int]) -> list[str]:
    """Each token's text as a tick label: spaces as "·", line breaks and tabs escaped, and
    "$" escaped so that matplotlib does not read it as the start of a formula."""
    labels = []
    for token in ids:
        text = repr(tokenizer.decode([token]))[1:-1].replace(" ", "·").replace("$", r"\$")
        labels.append(text)
    return labels


def selected_maps(
    n_layer: int, n_head: int, layer: int | None, head: int | None
) -> tuple[list[int], list[int]]:
    """The layers and heads to draw: all, or the one that `layer` / `head` names (0-based, as
    the modules are numbered: blocks.0 is the first layer)."""
    for name, value, count in (("layer", layer, n_layer), ("head", head, n_head)):
        whole_number = isinstance(value, int) and not isinstance(value, bool)
        if value is not None and not (whole_number and 0 <= value < count):
            raise ConfigError(
                f"{name} must be between 0 and {count - 1} (the model has {count} "
                f"{name}s, counted from 0), not {value}."
            )
    layers = [layer] if layer is not None else list(range(n_layer))
    heads = [head] if head is not None else list(range(n_head))
    return layers, heads


def attention_title(loaded: LoadedCheckpoint, prompt: str) -> str:
    """Which checkpoint, step and model the maps show, and for which prompt."""
    path = loaded.path
    run = run_folder_of(path)
    name = f"{run.path.name}/{path.name}" if run else path.name
    step = f", step {loaded.global_step:,}" if loaded.global_step is not None else ""
    config = loaded.model.config
    shown = prompt if len(prompt) <= TITLE_PROMPT_CHARS else prompt[:TITLE_PROMPT_CHARS] + "…"
    return (
        f"{name}{step}\n{config.n_layer} layers × {config.n_head} heads, d_model "
        f"{config.d_model}, {loaded.model.num_parameters() / 1e6:.2f}M parameters; "
        f"prompt {shown!r}"
    )


def draw_attention(
    weights: torch.Tensor,
    tokens: list[str],
    title: str,
    layer: int | None = None,
    head: int | None = None,
) -> Figure:
    """Heat maps of weights (L, H, T, T) — one sequence's — with `tokens` (T labels) on the
    axes: a grid of every layer (rows) and head (columns), or only the `layer` and/or `head`
    named; a single map is drawn large."""
    n_layer, n_head, T, _ = weights.shape
    layers, heads = selected_maps(n_layer, n_head, layer, head)
    rows, cols = len(layers), len(heads)
    single = rows == cols == 1
    cell = 7.0 if single else min(4.5, GRID_INCHES / max(rows, cols))
    # A Figure of its own, not pyplot: no global state, no display backend to choose.
    figure = Figure(figsize=(cols * cell + 1.5, rows * cell + 1.0), layout="constrained")
    grid = figure.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    # A square-root colour scale: weights spread over many keys are small but not nothing.
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)
    label_points = 0.7 * cell * 72 / T  # each token's share of a map's side, in points
    for row, layer_index in enumerate(layers):
        for col, head_index in enumerate(heads):
            axes = grid[row, col]
            image = axes.imshow(weights[layer_index, head_index].float().cpu().numpy(), norm=norm)
            axes.set_title(f"layer {layer_index}, head {head_index}", fontsize="medium")
    if label_points >= MIN_LABEL_POINTS:
        # The maps share their axes: ticks set on one are every map's (labels on the outer ones).
        grid[-1, 0].set_xticks(range(T), tokens)
        grid[-1, 0].set_yticks(range(T), tokens)
        for axes in grid.flat:  # the labels' looks are each map's own
            axes.tick_params(labelsize=min(10.0, label_points))
            axes.tick_params(axis="x", labelrotation=90)
    for axes in grid[-1]:
        axes.set_xlabel("key (looked at)")
    for axes in grid[:, 0]:
        axes.set_ylabel("query (looking)")
    # Every map has the same colour scale (norm), so one colour bar, the last map's, serves all.
    figure.colorbar(image, ax=grid, shrink=0.6 if single else 0.9, label="attention weight")
    figure.suptitle(title)
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Write `figure` as a PNG at `path`, atomically: a crash never leaves half a file under the
    real name, and an earlier file stays whole until the new one is done."""
    with atomic_write(path, "wb", folder_key="output_file") as handle:
        figure.savefig(handle, dpi=110, format="png")
    return path
