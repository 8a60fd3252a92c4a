"""Shared fixtures: small corpora the tests write themselves, and the real Hydra configs."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from filelock import FileLock
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tests import script_server
from tinylm.runs.claim import register_resolvers
from tinylm.training import fit

# One intra-op thread per process: the tests' models are tiny (threads gain little), and on a
# shared 2-core machine OpenMP threads that spin-wait for a busy core slow a test tenfold.
# The variable reaches the scripts and DDP ranks that tests start.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The scripts register it when they import their command; tests compose the configs directly.
register_resolvers()

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


def write_tinystories_repo(root: Path, n_train: int = 300, n_val: int = 40) -> Path:
    """A folder laid out like roneneldan/TinyStories: V1 parquet shards and V2 text files."""
    stories = make_story_corpus(n_train + n_val, seed=1)
    train, val = stories[:n_train], stories[n_train:]
    (root / "data").mkdir(parents=True)
    half = n_train // 2
    for i, part in enumerate([train[:half], train[half:]]):
        table = pa.table({"text": part})
        pq.write_table(table, root / "data" / f"train-{i:05d}-of-00002.parquet")
    pq.write_table(pa.table({"text": val}), root / "data" / "validation-00000-of-00001.parquet")
    # V2 stories: a different corpus, one story per block of lines ended by <|endoftext|>.
    v2 = [story.replace(". ", ".\n") for story in make_story_corpus(n_train + n_val, seed=2)]
    for name, part in (("train", v2[:n_train]), ("valid", v2[n_train:])):
        text = "".join(f"{story}\n<|endoftext|>\n" for story in part)
        (root / f"TinyStoriesV2-GPT4-{name}.txt").write_text(text)
    return root


def write_fineweb_repo(root: Path, shards: int, rows: int, row_group_size: int = 32) -> Path:
    """A folder laid out like HuggingFaceFW/fineweb: sample/10BT/*.parquet with `text` and `id`."""
    folder = root / "sample" / "10BT"
    folder.mkdir(parents=True)
    stories = make_story_corpus(shards * rows, seed=3)
    for shard in range(shards):
        part = stories[shard * rows : (shard + 1) * rows]
        table = pa.table(
            {
                "text": part,
                "id": [f"<urn:uuid:{shard:03d}-{row:06d}>" for row in range(rows)],
                "dump": ["CC-MAIN-2024-10"] * rows,
            }
        )
        pq.write_table(table, folder / f"{shard:03d}_00000.parquet", row_group_size=row_group_size)
    return root


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


def run_train_script(
    *args: str, cwd: Path, timeout: int = 600, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """`python scripts/train.py <args>` in its own process, as a user would start it, with the
    repository on the path (configs may name test callbacks) and `env` changed (None: unset)."""
    return run_script("train", *args, cwd=cwd, timeout=timeout,
                      env={"PYTHONPATH": str(REPO_ROOT), **(env or {})})  # fmt: skip


def run_script(
    name: str, *args: str, cwd: Path, timeout: int = 600, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """`python scripts/<name>.py <args>` in its own process with this process's environment,
    `env` changed (None: unset): subprocess.run(capture_output=True, text=True) of it, forked
    from a server that has done the imports (tests/script_server.py; seconds each otherwise)."""
    environment = {**os.environ, **(env or {})}
    environment = {name: value for name, value in environment.items() if value is not None}
    return script_server.run_script(name, *args, cwd=cwd, env=environment, timeout=timeout)


def start_train_script(
    *args: str, cwd: Path, stderr: Path | None = None
) -> script_server.BackgroundScript:
    """`python scripts/train.py <args>` started in the background, as run_train_script runs it
    (stdout discarded, stderr into the file `stderr` or discarded), for a test that signals,
    stops or kills it while it trains."""
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    discarded = Path(os.devnull)
    return script_server.start_script("train", *args, cwd=cwd, env=environment,
                                      stdout=discarded, stderr=stderr or discarded)  # fmt: skip


def compose_config(config_name: str, *overrides: str) -> DictConfig:
    """Any of the real top-level configs (generate, eval, …), composed with `overrides`."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name` that `build(folder)` filled, built once per session: xdist's workers
    share it (the first to ask builds it; the others wait on a lock and read it). It is built
    where it stays, as the paths recorded inside it (configs, cache fingerprints) name it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this session's folder, above the workers' own
    folder, built = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed left
            folder.mkdir()
            build(folder)
            built.touch()
    return folder


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A folder holding a tiny char model trained for 200 steps on the story corpus: the run
    folder `run/` (checkpoints, csv/metrics.csv), the text `stories.txt` and its `cache/`.
    Shared by the whole session (all workers): read it, never change it."""

    def build(folder: Path) -> None:
        story = folder / "stories.txt"
        story.write_text("\n<|endoftext|>\n".join(make_story_corpus(400)) + "\n")
        fit(compose_train(
            folder, "model=tiny", "data=text", "tokenizer=char", f"data.path={story}",
            "trainer.max_steps=200", "optimizer.lr=3e-3", "logger=csv",
            "callbacks.progress_bar=null",
        ))  # fmt: skip

    return built_once(tmp_path_factory, "trained", build)


def write_accented_stories(path: Path) -> Path:
    """The story corpus with accented words in every story: text whose characters take one,
    two or three UTF-8 bytes, for bits per byte and for tokenizer round trips."""
    stories = [f"{story} They ate crème brûlée at the café — naïve Zoë smiled." for story in
               make_story_corpus(300, seed=4)]  # fmt: skip
    path.write_text("\n<|endoftext|>\n".join(stories) + "\n")
    return path


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny models trained for 30 steps on accented stories, one folder per tokenizer: "bpe"
    (512 tokens, learned positions, exact GELU) and "gpt2" (sinusoidal positions, tanh GELU).
    Each holds the run folder `run/` (checkpoints, csv/metrics.csv), `stories.txt` and `cache/`.
    Shared by the whole session (all workers): read them, never change them."""
    settings = {
        "bpe": ["tokenizer=bpe", "tokenizer.vocab_size=512"],
        "gpt2": ["tokenizer=gpt2", "model.pos_encoding=sinusoidal", "model.gelu=tanh"],
    }

    def build(folder: Path, overrides: list[str]) -> None:
        story = write_accented_stories(folder / "stories.txt")
        fit(compose_train(
            folder, "model=tiny", "model.block_size=64", "data=text", f"data.path={story}",
            "data.batch_size=2", "trainer.max_steps=30", "trainer.val_check_interval=30",
            "trainer.limit_val_batches=10", "optimizer.lr=3e-3", "logger=csv",
            "callbacks.progress_bar=null", *overrides,
        ))  # fmt: skip

    return {
        name: built_once(tmp_path_factory, f"trained_{name}", partial(build, overrides=overrides))
        for name, overrides in settings.items()
    }


@pytest.fixture
def small_filesystem(tmp_path):
    """A mount point for a tmpfs that the test sizes: `mount(bytes)` mounts it (or skips the
    test where mounting is not permitted, as on most machines and CI containers), and
    `mount.read_only()` makes the mounted one read-only (as root, chmod would not)."""
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mounted = []

    def mount(size_bytes: int):
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount_point)],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(mount_point)
        return mount_point

    def read_only():
        subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)

    mount.read_only = read_only
    yield mount
    for point in mounted:
        subprocess.run(["umount", "--lazy", str(point)], check=True)  # files may be mapped still
