"""Heat maps of attention weights: which maps, which labels, and a PNG written whole."""

import errno

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from tinylm.errors import ConfigError, WriteError
from tinylm.inspection import draw_attention, save_figure, token_labels
from tinylm.inspection.attention_map import MASKED_COLOUR, selected_maps
from tinylm.tokenizers import CharTokenizer


def random_weights(n_layer: int, n_head: int, T: int) -> torch.Tensor:
    scores = torch.randn(n_layer, n_head, T, T).masked_fill(
        torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")
    )
    return scores.softmax(-1)  # (L, H, T, T)


def maps_of(figure):
    """The heat maps of a figure (its colour bar is an axes too), by title."""
    return {axes.get_title(): axes for axes in figure.axes if axes.images}


def test_every_layer_and_head_gets_a_map_and_one_is_drawn_larger():
    weights, tokens = random_weights(3, 2, 5), list("hello")
    grid = draw_attention(weights, tokens, "a title")
    assert sorted(maps_of(grid)) == [f"layer {i}, head {h}" for i in range(3) for h in range(2)]
    assert grid.get_suptitle() == "a title"

    single = draw_attention(weights, tokens, "a title", layer=2, head=1)
    (axes,) = maps_of(single).values()
    assert axes.get_title() == "layer 2, head 1"
    torch.testing.assert_close(torch.tensor(axes.images[0].get_array()), weights[2, 1])
    assert single.get_size_inches()[0] > grid.get_size_inches()[0] / 2

    assert sorted(maps_of(draw_attention(weights, tokens, "t", layer=1))) == [
        "layer 1, head 0", "layer 1, head 1"
    ]  # fmt: skip
    assert len(maps_of(draw_attention(weights, tokens, "t", head=0))) == 3


def labels(axes) -> list[str]:
    return [label.get_text() for label in axes.get_xticklabels()]


def test_tokens_label_the_axes_and_only_every_kth_one_when_they_crowd():
    tokens = [f"t{i}" for i in range(40)]
    weights = random_weights(2, 2, 40)
    single = next(iter(maps_of(draw_attention(weights, tokens, "t", layer=0, head=0)).values()))
    assert labels(single) == tokens
    assert [label.get_text() for label in single.get_yticklabels()] == tokens
    crowded = maps_of(draw_attention(random_weights(4, 4, 40), tokens, "t"))["layer 3, head 0"]
    shown = labels(crowded)
    every = tokens.index(shown[1])  # tokens, never position numbers: t0, tk, t2k, ...
    assert every > 1 and shown == tokens[::every]
    assert crowded.xaxis.get_ticklabels()[0].get_fontsize() >= 6.0
    assert f"every {every}th token" in crowded.get_xlabel()


def test_a_long_prompt_gets_a_wider_map_with_readable_token_labels():
    tokens = [chr(ord("a") + i % 26) for i in range(100)]  # a 100-character prompt
    figure = draw_attention(random_weights(2, 2, 100), tokens, "t", layer=0, head=1)
    (axes,) = maps_of(figure).values()
    assert figure.get_size_inches()[0] > 10
    assert len(labels(axes)) >= 50 and labels(axes)[:2] == [
        tokens[0],
        tokens[len(tokens) // len(labels(axes))],
    ]
    assert axes.xaxis.get_ticklabels()[0].get_fontsize() >= 6.0


def test_the_future_is_grey_not_the_colour_of_weight_zero_and_the_scale_is_named():
    weights = random_weights(1, 1, 6)
    weights[0, 0, 5, 2] = 0.0  # a weight of 0 the model gave, in the past
    figure = draw_attention(weights, list("abcdef"), "t")
    (axes,) = maps_of(figure).values()
    image = axes.images[0]
    shown = image.get_array()
    assert shown.mask.tolist() == torch.ones(6, 6, dtype=torch.bool).triu(1).tolist()
    future = image.cmap(np.ma.masked_array([0.5], [True]))[0]  # the colour of a masked cell
    zero = image.cmap(image.norm(0.0))
    assert to_hex(future) != to_hex(zero) and to_hex(future) == MASKED_COLOUR
    (bar,) = [a for a in figure.axes if a is not axes]
    assert "square-root" in bar.get_ylabel()
    assert "Grey: later tokens" in figure.get_supxlabel()


@pytest.mark.parametrize("layer, head", [(0, 0), (None, None)])
def test_the_title_stays_inside_the_figure(layer, head):
    long_line = "2 layers × 2 heads, d_model 64, 0.12M parameters; prompt " + repr(
        "ROMEO: But soft, what light through yonder window breaks? It i…"
    )  # 120 characters: wider than a one-map figure at the title's size
    title = f"run/best-step0000300-val2.4698.ckpt, step 300\n{long_line}"
    figure = draw_attention(random_weights(2, 2, 8), list("abcdefgh"), title, layer, head)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    box = figure._suptitle.get_window_extent(canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width


@pytest.mark.parametrize(
    "layer, head, message",
    [(3, None, "layer must be between 0 and 2 (the model has 3 layers, counted from 0), not 3."),
     (None, -1, "head must be between 0 and 1 (the model has 2 heads, counted from 0), not -1.")],
)  # fmt: skip
def test_a_layer_or_head_the_model_lacks_is_refused(layer, head, message):
    with pytest.raises(ConfigError) as error:
        draw_attention(random_weights(3, 2, 4), list("abcd"), "t", layer=layer, head=head)
    assert str(error.value) == message


def test_token_labels_show_spaces_and_line_breaks_and_keep_dollars_literal():
    tokenizer = CharTokenizer(list("ab $\n"))
    ids = tokenizer.encode("a b\n$")
    assert token_labels(tokenizer, ids) == ["a", "·", "b", "\\n", "\\$"]


def test_the_png_replaces_an_earlier_one_only_when_complete(tmp_path):
    path = tmp_path / "maps" / "attention.png"
    figure = draw_attention(random_weights(1, 1, 3), list("abc"), "t")
    assert save_figure(figure, path) == path
    first = path.read_bytes()
    assert first.startswith(b"\x89PNG\r\n\x1a\n")

    def fail(target, **kwargs):
        target.write(first[:100])  # half a PNG, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    figure.savefig = fail
    with pytest.raises(WriteError, match="No space left on device while saving .*output_file"):
        save_figure(figure, path)
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == ["attention.png"]


@pytest.mark.parametrize("layer", ["abc", True, 1.5, -1, 2])
def test_a_layer_that_is_not_one_of_the_models_is_one_sentence(layer):
    with pytest.raises(ConfigError, match="layer must be between 0 and 1"):
        selected_maps(n_layer=2, n_head=4, layer=layer, head=None)
