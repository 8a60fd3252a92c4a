"""The promise to users: every mistake of theirs, in any script, is one sentence and a non-zero
exit — never a traceback — and leaves what existed before (a run folder, its checkpoints, a
tokenized cache) byte-identical.

Each case is the real script in its own process, as a user starts it: forked from a server that
has imported torch, Lightning and Hydra once (tests/script_server.py), since importing them
was most of a case's time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO_ROOT, run_script
from tinylm.checkpoint import load_checkpoint


@dataclass(frozen=True)
class Case:
    name: str
    script: str
    args: tuple[str, ...]  # {run}, {ckpt}, {text}, {cache}, {bad} are filled in below
    names: str  # what the error line must name: the offending key or file
    train_defaults: bool = True  # train cases start from a tiny char model on the run's text
    never_says: str | None = None  # advice that cannot help in this case


CASES = [
    # train
    Case("a value of the wrong kind", "train", ("trainer.max_steps=abc",), "trainer.max_steps"),
    Case("a flag that is not true or false", "train", ("trainer.deterministic=3",),
         "trainer.deterministic"),
    Case("a negative learning rate", "train", ("optimizer.lr=-0.1",), "optimizer.lr"),
    Case("betas out of range", "train", ("optimizer.betas=[0.9,1.5]",), "optimizer.betas"),
    Case("heads that do not divide the width", "train", ("model.n_head=3",), "model.n_head"),
    Case("key/value heads that do not divide the heads", "train", ("model.n_kv_head=3",),
         "model.n_kv_head"),
    Case("rotary positions on an odd head width", "train",
         ("model.pos_encoding=rope", "model.d_model=66"), "model.d_model"),
    Case("an unknown model setting", "train", ("+model.depth=3",), "model.depth"),
    Case("an unknown Trainer argument", "train", ("+trainer.epochz=3",), "epochz"),
    Case("a GPU the machine lacks", "train", ("hardware=gpu",), "hardware.accelerator"),
    Case("a data file that is not there", "train", ("data.path={bad}/missing.txt",),
         "missing.txt"),
    Case("a data file of another kind", "train", ("data.path={bad}/notes.md",), "notes.md"),
    Case("data.path without data=text", "train", ("data.path={text}",), "data.path",
         train_defaults=False),
    Case("resuming from a checkpoint that is not there", "train",
         ("ckpt_path={bad}/missing.ckpt",), "missing.ckpt"),
    Case("resuming from a file of random bytes", "train", ("ckpt_path={bad}/random.ckpt",),
         "random.ckpt"),
    Case("resuming from a run folder given as ckpt_path", "train", ("ckpt_path={run}",),
         "ckpt_path"),
    Case("resuming from a truncated checkpoint", "train", ("ckpt_path={bad}/truncated.ckpt",),
         "truncated.ckpt"),
    Case("resuming a checkpoint of another model size", "train",
         ("ckpt_path={ckpt}", "model.d_model=128"), "d_model"),
    Case("a binary file as text", "train", ("data.path={bad}/binary.txt",), "binary.txt"),
    Case("a learning rate that diverges", "train",
         ("optimizer.lr=1e3", "trainer.max_steps=20", "optimizer.warmup_steps=0"),
         "optimizer.lr"),
    Case("resume= of a folder that is not a run", "train", ("resume={bad}",), "resume="),
    Case("a new run into a folder that holds one", "train", ("hydra.run.dir={run}",), "resume="),
    Case("init_from contradicted by the command line", "train",
         ("init_from={run}", "model.n_layer=5"), "model.n_layer"),
    Case("Muon with sharded matrices", "train", ("optimizer=muon", "hardware=fsdp"),
         "optimizer=muon"),
    Case("init_from a folder that holds no model", "train", ("init_from={bad}/empty",), "empty"),
    Case("init_from a 🤗 folder without tokenizer files", "train",
         ("init_from={bad}/hf_no_tokenizer",), "hf_no_tokenizer has no tokenizer files"),
    Case("init_from a 🤗 folder whose config contradicts its weights", "train",
         ("init_from={bad}/hf_other_vocabulary",), "hf_other_vocabulary/config.json"),
    Case("init_from a 🤗 folder whose weights would run code", "train",
         ("init_from={bad}/hf_unsafe",), "pytorch_model.bin asks to run code"),
    Case("a cache folder where a file is", "train", ("paths.cache_dir={bad}/notes.md/cache",),
         "notes.md is a file where a folder should be"),
    Case("a log folder where a file is", "train", ("paths.log_dir={bad}/notes.md/logs",),
         "notes.md is a file where a folder should be"),
    Case("a batch of no sequences", "train", ("data.batch_size=0",), "data.batch_size=0"),
    Case("no micro-batches per step", "train", ("trainer.accumulate_grad_batches=0",),
         "trainer.accumulate_grad_batches=0"),
    Case("validation every 0 batches", "train", ("trainer.val_check_interval=0",),
         "trainer.val_check_interval=0"),
    Case("no validation batches", "train", ("trainer.limit_val_batches=0",),
         "trainer.limit_val_batches=0"),
    Case("a negative seed", "train", ("seed=-1",), "seed=-1"),
    Case("a negative gradient clip", "train", ("trainer.gradient_clip_val=-1",),
         "trainer.gradient_clip_val=-1"),
    Case("a setting no command takes", "train", ("+lr=0.1",), "lr is not a setting"),
    Case("a Trainer argument of the wrong kind", "train", ("+trainer.max_epochs=abc",),
         "trainer.max_epochs=abc is not allowed"),
    Case("an empty cache folder", "train", ("paths.cache_dir=",), "paths.cache_dir is empty"),
    Case("a strategy Lightning does not have", "train", ("hardware.strategy=dpp",),
         "invalid strategy name: `strategy='dpp'`"),
    Case("an empty text file", "train", ("data.path={bad}/empty.txt",), "holds no text"),
    Case("a TPU the machine lacks", "train", ("hardware.accelerator=tpu",),
         "hardware.accelerator=tpu, but this machine has no such device"),
    Case("FSDP on a machine without a GPU", "train", ("hardware=fsdp",), "hardware=fsdp"),
    Case("a precision Lightning does not have", "train", ("hardware.precision=fp8",),
         "hardware.precision=fp8"),
    Case("several machines without srun or torchrun", "train", ("hardware=multinode",),
         "hardware.num_nodes=2"),
    # eval
    Case("eval: a train split shorter than the checkpoint's context", "eval",
         ("ckpt_path={ckpt}", "split=train", "data=text", "data.path={bad}/short.txt",
          "data.val_fraction=0.9"), "lower data.val_fraction", never_says="model.block_size"),
    Case("eval: a checkpoint that is not there", "eval", ("ckpt_path={bad}/missing.ckpt",),
         "missing.ckpt"),
    Case("eval: a text file as the checkpoint", "eval", ("ckpt_path={text}",), "stories.txt"),
    Case("eval: a split that does not exist", "eval", ("ckpt_path={ckpt}", "split=test"),
         "split"),
    Case("eval: no batches", "eval", ("ckpt_path={ckpt}", "limit_batches=0"), "limit_batches"),
    Case("eval: no checkpoint given", "eval", (), "ckpt_path"),
    Case("eval: eval.json where a file is in the way", "eval",
         ("ckpt_path={ckpt}", "output_file={bad}/notes.md/eval.json"),
         "notes.md is a file where a folder should be"),
    # generate
    Case("generate: a cut-short model.safetensors", "generate",
         ("ckpt_path={bad}/hf_truncated",), "model.safetensors cannot be read"),
    Case("generate: top_p above 1", "generate", ("ckpt_path={run}", "top_p=2"), "top_p"),
    Case("generate: a prompt file that is not there", "generate",
         ("ckpt_path={run}", "prompt_file={bad}/missing.txt"), "missing.txt"),
    Case("generate: a word for a number", "generate", ("ckpt_path={run}", "max_new_tokens=many"),
         "max_new_tokens"),
    Case("generate: a file of random bytes", "generate", ("ckpt_path={bad}/random.ckpt",),
         "random.ckpt"),
    Case("generate: a temperature for beam search", "generate",
         ("ckpt_path={run}", "strategy=beam", "temperature=0.5"), "temperature=0.5"),
    Case("generate: several greedy samples, all the same", "generate",
         ("ckpt_path={run}", "strategy=greedy", "num_samples=3"), "num_samples=3"),
    Case("generate: top_p with temperature 0", "generate",
         ("ckpt_path={run}", "temperature=0", "top_p=0.9"), "top_p=0.9 has no effect"),
    Case("generate: top_p for beam search", "generate",
         ("ckpt_path={run}", "strategy=beam", "top_p=0.9"), "top_p=0.9 has no effect"),
    Case("generate: top_k beyond the vocabulary", "generate",
         ("ckpt_path={run}", "top_k=100000"), "top_k=100000 has no effect"),
    # serve
    Case("serve: a negative limit", "serve", ("ckpt_path={run}", "limits.max_new_tokens=-1"),
         "limits.max_new_tokens=-1 is not allowed: limits.max_new_tokens takes a whole number ≥ 1"),
    Case("serve: a limit that does not exist", "serve",
         ("ckpt_path={run}", "+limits.max_tokens=9"), "limits.max_tokens is not a setting"),
    # prepare_data
    Case("prepare_data: a folder without text files", "prepare_data",
         ("data=text", "data.path={bad}/empty"), "empty"),
    Case("prepare_data: an unknown TinyStories variant", "prepare_data", ("data.variant=v3",),
         "data.variant"),
    Case("prepare_data: a BPE smaller than its bytes", "prepare_data",
         ("data=text", "data.path={text}", "tokenizer.vocab_size=100"), "tokenizer.vocab_size"),
    Case("prepare_data: a BPE vocabulary beyond memory", "prepare_data",
         ("data=text", "data.path={text}", "tokenizer=bpe", "tokenizer.vocab_size=1000000000"),
         "tokenizer.vocab_size=1000000000 is not allowed"),
    # export
    Case("export: no output folder given", "export", ("ckpt_path={run}",), "output_dir"),
    Case("export: into a folder that holds files", "export",
         ("ckpt_path={run}", "output_dir={run}"), "output_dir"),
    Case("export: a checkpoint that is not there", "export",
         ("ckpt_path={bad}/missing.ckpt", "output_dir={bad}/exported"), "missing.ckpt"),
    Case("export: into a file's place", "export",
         ("ckpt_path={run}", "output_dir={bad}/notes.md/exported"),
         "notes.md is a file where a folder should be"),
    Case("prepare_data: a cache folder where a file is", "prepare_data",
         ("data=text", "data.path={text}", "paths.cache_dir={bad}/notes.md/cache"),
         "notes.md is a file where a folder should be"),
    Case("a run folder that cannot be made", "compare",
         ("runs={run}", "hydra.run.dir=/proc/tinylm-run"), "point hydra.run.dir elsewhere"),
    # compare
    Case("compare: a figure that is not a PNG", "compare", ("runs={run}", "output={bad}/plot.jpg"),
         "does not end in .png"),
    Case("compare: a folder that is not there", "compare", ("runs={bad}/missing",), "missing"),
    Case("compare: no runs given", "compare", (), "runs"),
]  # fmt: skip
TRAIN_DEFAULTS = ("model=tiny", "data=text", "data.path={text}", "tokenizer=char")


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.endswith(".lock")
    }


@pytest.fixture(scope="module")
def places(trained_run, tmp_path_factory):
    """What the cases' arguments name: the trained run, its checkpoint and text, and a folder
    `bad` of broken files; each case's logs go under bad/outputs."""
    bad = tmp_path_factory.mktemp("bad")
    (bad / "notes.md").write_text("not text data")
    (bad / "empty").mkdir()
    (bad / "empty.txt").write_text("")
    (bad / "random.ckpt").write_bytes(os.urandom(4096))
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 16)
    (bad / "short.txt").write_text((trained_run / "stories.txt").read_text()[:1000])
    checkpoint = trained_run / "run" / "checkpoints" / "last.ckpt"
    data = checkpoint.read_bytes()
    (bad / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    write_bad_transformers_folders(checkpoint, bad)
    # A copy of the run's cache: a case that tokenizes another text must not add to the shared
    # run's cache, which other tests read.
    shutil.copytree(trained_run / "cache", bad / "cache")
    yield {
        "run": trained_run / "run", "ckpt": checkpoint, "text": trained_run / "stories.txt",
        "cache": bad / "cache", "bad": bad,
    }  # fmt: skip
    shutil.rmtree(bad / "outputs", ignore_errors=True)


def run_case(case: Case, places: dict[str, Path]) -> subprocess.CompletedProcess:
    """`python scripts/<case.script>.py <args>` in its own process."""
    defaults = TRAIN_DEFAULTS if case.script == "train" and case.train_defaults else ()
    filled = [arg.format(**places) for arg in (*defaults, *case.args)]
    bad = places["bad"]
    log_dir = bad / "outputs" / "".join(c if c.isalnum() else "-" for c in case.name)
    return run_script(case.script, f"paths.log_dir={log_dir}",
                      f"paths.cache_dir={places['cache']}", *filled, cwd=bad)  # fmt: skip


class RunsCode:
    """What a malicious pytorch_model.bin pickles: unpickling it would call print."""

    def __reduce__(self):
        return (print, ("this ran on loading",))


def write_bad_transformers_folders(checkpoint: Path, bad: Path) -> None:
    """The trained model exported as a 🤗 folder, then copied into `bad` with one fault each."""
    from tinylm.interop.export import export_to_transformers

    loaded = load_checkpoint(checkpoint)
    export_to_transformers(loaded.model, loaded.tokenizer, bad / "hf")
    faults = {"hf_no_tokenizer": ("tokenizer.json",), "hf_unsafe": ("model.safetensors",),
              "hf_other_vocabulary": (), "hf_truncated": ()}  # fmt: skip
    for name, left_out in faults.items():
        shutil.copytree(bad / "hf", bad / name, ignore=shutil.ignore_patterns(*left_out))
    torch.save({"weights": RunsCode()}, bad / "hf_unsafe" / "pytorch_model.bin")
    config = json.loads((bad / "hf" / "config.json").read_text())
    config["vocab_size"] += 10
    (bad / "hf_other_vocabulary" / "config.json").write_text(json.dumps(config))
    weights = bad / "hf_truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


def test_there_are_at_least_twenty_cases_across_the_scripts():
    assert len(CASES) >= 20
    assert {case.script for case in CASES} >= {
        "train",
        "eval",
        "generate",
        "prepare_data",
        "export",
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_mistake_is_one_sentence_a_non_zero_exit_and_changes_nothing(trained_run, places, case):
    before = folder_digest(trained_run)
    result = run_case(case, places)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert case.names in errors[0], errors[0]
    assert "this ran on loading" not in output
    assert case.never_says is None or case.never_says not in errors[0], errors[0]
    # What existed before (the run folder, its checkpoints, its text and cache) is unchanged.
    after = folder_digest(trained_run)
    assert {name: after.get(name) for name in before} == before


# -- edges that are not mistakes: the right behaviour, said in a line --------------------------

TINY_RUN = ("model=tiny", "data=text", "tokenizer=char", "trainer.max_steps=4",
            "trainer.val_check_interval=2", "trainer.limit_val_batches=2",
            "callbacks.progress_bar=null")  # fmt: skip


def train_script(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "train.py"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "overwritten", "deleted", "tokenizer edited"])
def test_a_cache_changed_since_it_was_written_is_tokenized_again(trained_run, tmp_path, damage):
    cache = tmp_path / "cache"
    shutil.copytree(trained_run / "cache", cache)
    # The run's own cache (other cases evaluate the run on other texts, which caches them too).
    story = str(trained_run / "stories.txt")
    (folder,) = [
        path for path in cache.iterdir()
        if path.is_dir() and json.loads((path / "meta.json").read_text())["fingerprint"]
        ["source"]["files"][0]["path"] == story
    ]  # fmt: skip
    before = folder_digest(folder)
    files_before = json.loads((folder / "meta.json").read_text())["files"]
    train = folder / "train.bin"
    if damage == "truncated":
        train.write_bytes(train.read_bytes()[:1000])
    elif damage == "overwritten":
        train.write_bytes(os.urandom(train.stat().st_size))
    elif damage == "deleted":
        train.unlink()
    else:
        (folder / "tokenizer.json").write_text('{"kind": "char", "chars": "abc"}')
    result = run_script(
        "prepare_data", "data=text", f"data.path={trained_run / 'stories.txt'}", "tokenizer=char",
        f"paths.cache_dir={cache}", f"paths.log_dir={tmp_path / 'logs'}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert f"The tokenized cache {folder} " in result.stderr
    assert ": tokenizing again." in result.stderr
    # The same tokens and tokenizer as first written (meta.json differs in its build time).
    assert {
        name: digest for name, digest in folder_digest(folder).items() if name != "meta.json"
    } == {name: digest for name, digest in before.items() if name != "meta.json"}
    assert json.loads((folder / "meta.json").read_text())["files"] == files_before


@pytest.mark.slow
def test_a_sweep_job_with_a_bad_value_fails_alone_and_the_summary_counts_every_job(
    trained_run, tmp_path
):
    sweep = train_script("-m", *TINY_RUN, f"data.path={trained_run / 'stories.txt'}",
                         f"paths.cache_dir={tmp_path / 'cache'}", f"paths.log_dir={tmp_path}",
                         "optimizer.lr=1e-3,abc", cwd=tmp_path)  # fmt: skip
    stdout, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, stderr
    (folder,) = (tmp_path / "train" / "multiruns").iterdir()
    failed = json.loads((folder / "1" / "result.json").read_text())
    assert failed["status"] == "failed" and failed["overrides"][-1] == "optimizer.lr=abc"
    assert failed["error"].startswith("optimizer.lr=abc is not allowed")
    assert failed["error"] in (folder / "1" / "train.log").read_text()
    assert json.loads((folder / "0" / "result.json").read_text())["status"] == "completed"
    summary = (folder / "summary.md").read_text()
    assert "2 jobs: 1 completed, 1 failed." in summary and summary in stdout
    assert f"- job 1: {failed['error']}" in summary


@pytest.mark.slow
@pytest.mark.parametrize("signum, times", [(signal.SIGINT, 2), (signal.SIGTERM, 3)])
def test_repeated_signals_while_training_stop_after_the_step_with_a_checkpoint(
    trained_run, tmp_path, signum, times
):
    run = tmp_path / "run"
    stop = ("+callbacks.signal._target_=tests.training.callbacks_for_tests.SignalAtStep",
            "+callbacks.signal.step=1", f"+callbacks.signal.signum={int(signum)}",
            f"+callbacks.signal.times={times}")  # fmt: skip
    process = train_script(*TINY_RUN, f"data.path={trained_run / 'stories.txt'}", *stop,
                           f"paths.cache_dir={trained_run / 'cache'}", f"hydra.run.dir={run}",
                           cwd=tmp_path)  # fmt: skip
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert stderr.count(f"{signum.name}: already stopping after this step.") == times - 1
    assert f"Stopped by {signum.name} at step 2; continue with" in stderr
    assert json.loads((run / "result.json").read_text())["status"] == "interrupted"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2


@pytest.mark.slow
def test_ctrl_c_while_tokenizing_stops_at_once_and_leaves_nothing_partial(tmp_path):
    text = tmp_path / "large.txt"  # long enough to be still tokenizing a second after it starts
    text.write_text("\n<|endoftext|>\n".join(["Once upon a time there was a cat. " * 40] * 15000))
    run, cache = tmp_path / "run", tmp_path / "cache"
    process = train_script(
        "model=tiny",
        "data=text",
        "tokenizer=char",
        f"data.path={text}",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
    )
    lines = []
    for line in process.stderr:  # fmt: skip
        lines.append(line)
        if line.startswith("Tokenizing into"):
            break
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=600)
    stderr = "".join(lines) + rest
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "Stopped by SIGINT before its first checkpoint: there is nothing to resume" in stderr
    assert json.loads((run / "result.json").read_text())["status"] == "interrupted"
    assert [path.name for path in cache.iterdir() if not path.name.endswith(".lock")] == []


@pytest.mark.slow
def test_a_full_disk_before_the_command_starts_is_one_sentence(trained_run, small_filesystem):
    """Hydra records the invocation (.hydra/*.yaml) before any of tinylm's code runs."""
    disk = small_filesystem(64 << 10)
    (disk / "filler").write_bytes(b"x" * (64 << 10))
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "generate.py"),
         f"ckpt_path={trained_run / 'run'}", f"paths.log_dir={disk / 'logs'}"],
        capture_output=True, text=True, cwd=disk.parent, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: No space left on device while saving ")
    assert error.endswith("/.hydra/config.yaml: free space or point paths.log_dir elsewhere.")
    (run,) = (disk / "logs" / "generate" / "runs").iterdir()
    assert list((run / ".hydra").iterdir()) == []  # no half-written record
