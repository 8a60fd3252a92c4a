"""Drawing attention weights as heat maps: one per layer and head, query × key.

Row i of a map is query i (the token doing the looking), column j is key j (the token looked
at); its colour is the weight, from 0 to 1. Every row sums to 1, and the triangle above the
diagonal is grey: the causal mask keeps a token from looking ahead, so those cells are not
weights of 0 the model chose but cells it cannot see. Tokens label the axes; on a long prompt
every k-th token does, so the labels stay readable.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from tinylm.checkpoint import LoadedCheckpoint
from tinylm.errors import ConfigError
from tinylm.runs.folder import run_folder_of
from tinylm.tokenizers import Tokenizer
from tinylm.utils.files import atomic_write

GRID_INCHES = 16.0  # the larger side of a grid of maps, at most
SINGLE_INCHES = (7.0, 14.0)  # a single map's side: wider for long prompts, up to the second
MIN_LABEL_POINTS = 6.0  # smallest readable tick label; below it, only every k-th token is labelled
TITLE_PROMPT_CHARS = 60
TITLE_POINTS = 14.0  # the suptitle's size ("large")
# The future triangle's colour: none of the colour map's, so it never reads as a weight of 0.
MASKED_COLOUR = "#d0d0d0"
CAPTION = (
    "Row = the token looking (query); column = the token looked at (key); each row sums to 1, "
    "so the first row is all on the first token. Grey: later tokens, hidden by the causal mask. "
    "In a trained model, look for a band along the diagonal (a head reading the last few "
    "tokens), a bright line just below it (the previous token) and bright columns (a token many "
    "later ones look back to, such as the start of a word)."
)


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
        f"{config.d_model}, {loaded.model.num_parameters() / 1e6:.2f}M parameters\n"
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
    named; a single map is drawn large (larger for long prompts)."""
    n_layer, n_head, T, _ = weights.shape
    layers, heads = selected_maps(n_layer, n_head, layer, head)
    rows, cols = len(layers), len(heads)
    single = rows == cols == 1
    if single:  # wide enough for every token's label at the smallest readable size, if it can
        cell = min(max(SINGLE_INCHES[0], T * MIN_LABEL_POINTS / (0.7 * 72)), SINGLE_INCHES[1])
    else:
        cell = min(4.5, GRID_INCHES / max(rows, cols))
    width = cols * cell + 1.5
    # A Figure of its own, not pyplot: no global state, no display backend to choose.
    figure = Figure(figsize=(width, rows * cell + 1.6), layout="constrained")
    grid = figure.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    # A square-root colour scale: weights spread over many keys are small but not nothing.
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)
    colours = matplotlib.colormaps["viridis"].with_extremes(bad=MASKED_COLOUR)
    future = np.triu(np.ones((T, T), dtype=bool), k=1)  # (T, T): key after query
    for row, layer_index in enumerate(layers):
        for col, head_index in enumerate(heads):
            axes = grid[row, col]
            shown = np.ma.masked_array(
                weights[layer_index, head_index].float().cpu().numpy(), future
            )
            image = axes.imshow(shown, norm=norm, cmap=colours)
            axes.set_title(f"layer {layer_index}, head {head_index}", fontsize="medium")
    label_points = 0.7 * cell * 72 / T  # each token's share of a map's side, in points
    every = math.ceil(MIN_LABEL_POINTS / label_points)  # label every `every`-th token
    # The maps share their axes: ticks set on one are every map's (labels on the outer ones).
    grid[-1, 0].set_xticks(range(0, T, every), tokens[::every])
    grid[-1, 0].set_yticks(range(0, T, every), tokens[::every])
    for axes in grid.flat:  # the labels' looks are each map's own
        axes.tick_params(labelsize=min(10.0, label_points * every))
        axes.tick_params(axis="x", labelrotation=90)
    for axes in grid[-1]:
        axes.set_xlabel("key (looked at)" + (f", every {every}th token" if every > 1 else ""))
    for axes in grid[:, 0]:
        axes.set_ylabel("query (looking)")
    # Every map has the same colour scale (norm), so one colour bar, the last map's, serves all.
    bar = figure.colorbar(image, ax=grid, shrink=0.6 if single else 0.9)
    bar.set_label("attention weight (square-root scale: small weights stay visible)")
    bar.set_ticks([0, 0.01, 0.05, 0.1, 0.25, 0.5, 1])
    figure.suptitle(wrap_to(title, width, TITLE_POINTS), fontsize=TITLE_POINTS)
    figure.supxlabel(wrap_to(CAPTION, width, 9.0), fontsize=9.0, color="0.3")
    return figure


def wrap_to(text: str, inches: float, points: float) -> str:
    """`text` with each line wrapped to fit `inches` at a font of `points` (a character is about
    0.55 of the font size wide), so that a title never runs off the figure."""
    chars = max(20, int(inches * 72 / (0.55 * points)))
    return "\n".join(textwrap.fill(line, chars) for line in text.splitlines())


def save_figure(figure: Figure, path: Path) -> Path:
    """Write `figure` as a PNG at `path`, atomically: a crash never leaves half a file under the
    real name, and an earlier file stays whole until the new one is done."""
    with atomic_write(path, "wb", folder_key="output_file") as handle:
        figure.savefig(handle, dpi=110, format="png")
    return path
