"""Shared fixtures: small corpora the tests write themselves, and the real Hydra configs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tinylm.training import train

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
REPO_ROOT = CONF_DIR.parent


def make_story_corpus(n_stories: int, seed: int = 0) -> list[str]:
    """Short stories from a tiny grammar: structured enough that a tiny model learns it fast."""
    rng = random.Random(seed)
    names = ["Tom", "Lily", "Ben", "Mia", "Sam"]
    animals = ["cat", "dog", "bird", "fish", "frog"]
    places = ["park", "garden", "house", "river", "school"]
    feelings = ["happy", "sad", "tired", "glad", "brave"]
    stories = []
    for _ in range(n_stories):
        name, animal = rng.choice(names), rng.choice(animals)
        place, feeling = rng.choice(places), rng.choice(feelings)
        stories.append(
            f"Once upon a time, {name} had a {animal}. "
            f"One day, {name} and the {animal} went to the {place}. "
            f"The {animal} was {feeling}. {name} was {feeling} too. The end."
        )
    return stories


@pytest.fixture
def story_file(tmp_path: Path) -> Path:
    """A .txt corpus in the layout of TinyStories' files: stories separated by <|endoftext|>."""
    path = tmp_path / "stories.txt"
    path.write_text("\n<|endoftext|>\n".join(make_story_corpus(400)) + "\n")
    return path


def compose_train(tmp_path: Path, *overrides: str) -> DictConfig:
    """The real conf/train.yaml, composed as `python scripts/train.py <overrides>` would be,
    writing its run folder and caches under tmp_path."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                f"paths.output_dir={tmp_path / 'run'}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                *overrides,
            ],
        )


def compose_config(config_name: str, *overrides: str) -> DictConfig:
    """Any of the real top-level configs (generate, eval, …), composed with `overrides`."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A folder holding a tiny char model trained for 200 steps on the story corpus: the run
    folder `run/` (checkpoints, csv/metrics.csv), the text `stories.txt` and its `cache/`.
    Shared by the whole session: read it, never change it."""
    folder = tmp_path_factory.mktemp("trained")
    story = folder / "stories.txt"
    story.write_text("\n<|endoftext|>\n".join(make_story_corpus(400)) + "\n")
    train(compose_train(
        folder, "model=tiny", "data=text", "tokenizer=char", f"data.path={story}",
        "trainer.max_steps=200", "optimizer.lr=3e-3", "logger=csv", "callbacks.progress_bar=null",
    ))  # fmt: skip
    return folder
