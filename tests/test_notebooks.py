"""The tutorial notebook runs top to bottom, offline, on a play the test writes itself.

The notebook downloads Tiny Shakespeare into <repository>/data/ unless the file is there, and
finds tinylm's configs in <repository>/conf/. The test runs it in a copy of that layout under
tmp_path, with the text already in place, so it neither downloads nor writes into the
repository.
"""

import random
import re
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import CONF_DIR, REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
TUTORIAL = REPO_ROOT / "notebooks" / "train_a_tiny_gpt.ipynb"


def make_play(n_chars: int, seed: int = 0) -> str:
    """Speeches in Tiny Shakespeare's layout (a speaker's name and a colon, lines, a blank line),
    using every character of the prompts the notebook and its training recipe use."""
    rng = random.Random(seed)
    speakers = ["ROMEO", "JULIET", "NURSE", "MERCUTIO", "FRIAR LAURENCE"]
    words = [
        "but", "soft", "what", "light", "through", "yonder", "window", "breaks", "it", "is",
        "the", "east", "and", "juliet", "sun", "arise", "fair", "kill", "envious", "moon", "who",
        "sick", "pale", "with", "grief", "that", "thou", "her", "maid", "art", "far", "more",
        "than", "she", "o", "romeo", "wherefore", "deny", "thy", "father", "refuse", "name",
    ]  # fmt: skip
    speeches, size = [], 0
    while size < n_chars:
        lines = []
        for _ in range(rng.randint(1, 3)):
            line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 9)))
            lines.append(line.capitalize() + rng.choice([".", ",", "?", "!", ";"]))
        speech = f"{rng.choice(speakers)}:\n" + "\n".join(lines) + "\n\n"
        speeches.append(speech)
        size += len(speech)
    return "".join(speeches)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_saved_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow
def test_the_tutorial_trains_samples_and_draws_attention(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    shutil.copytree(CONF_DIR, tmp_path / "conf")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tinyshakespeare.txt").write_text(make_play(300_000))
    monkeypatch.setenv("TINYLM_CACHE", str(tmp_path / "cache"))

    notebook = nbformat.read(TUTORIAL, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path / "notebooks")}},
    )  # fmt: skip
    client.execute()

    def printed(cell) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    images = [c for c in code if any("image/png" in o.get("data", {}) for o in c.outputs)]
    assert len(images) == 2  # the loss curve and the attention maps
    everything = "\n".join(printed(cell) for cell in code)
    # What a learner reads: tinylm's lines, no progress bar redrawn as text, no warnings.
    print(f"the notebook printed {len(everything):,} characters")
    assert len(everything) < 12_000
    assert "IProgress" not in everything and "Warning" not in everything
    # The model learned: its validation loss ended well below chance, ln V.
    found = re.search(
        r"validation loss after 300 steps: ([\d.]+) \(it started near ln V = ([\d.]+)", everything
    )
    assert found and float(found.group(1)) < float(found.group(2)) - 1.0
    assert re.search(r"blocks\.0\.attn\.probe\.weights +\(1, 2, 6, 6\)", everything)
    assert "every row sums to 1: True" in everything
    assert everything.count("--- temperature") == 4
    (run,) = (tmp_path / "outputs" / "notebook").iterdir()
    assert (run / "loss_curve.png").is_file() and list(run.glob("checkpoints/best-*.ckpt"))
