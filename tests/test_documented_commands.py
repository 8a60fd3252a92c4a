"""Every command in README.md and docs/learning-path.md works as written.

The commands of each document are collected from its ```bash blocks and replayed in order, in a
folder of their own, on a play the test writes as data/tinyshakespeare.txt: the cheap ones run
(in process, as the scripts run them, with training cut to a few steps and generation to a few
tokens), each on the run folders the commands before it made; the rest — a download, a GPU, a
sweep, a resume — compose against the real configs with every override, and every
interpolation resolves. Shell lines are checked for what can be checked offline (a Makefile
target, the download's address, a benchmark's flags). A command of a kind this test does not
know fails it, so a new one is never left unchecked.
"""

from __future__ import annotations

import re
import shlex
import string
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from tests.conftest import CONF_DIR, REPO_ROOT, compose_config
from tests.test_notebooks import TUTORIAL, make_play
from tinylm.commands.attention import attention
from tinylm.commands.compare import compare
from tinylm.commands.eval import evaluate
from tinylm.commands.export import export
from tinylm.commands.generate import generate
from tinylm.commands.train import train

DOCUMENTS = ["README.md", "docs/learning-path.md"]
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)
COMMANDS = {"train": train, "generate": generate, "eval": evaluate, "attention": attention,
            "compare": compare, "export": export}  # fmt: skip
# Training as documented, then cut short: a few steps of a few windows, validated once.
FEW_STEPS = ["trainer.max_steps=4", "trainer.val_check_interval=4", "trainer.limit_val_batches=1",
             "data.batch_size=4", "callbacks.progress_bar=null", "hardware=cpu"]  # fmt: skip
SHELL = {"make", "source", "curl", "git", "cd", "lm_eval", "bash"}
# The address the notebook downloads Tiny Shakespeare from, and the file both use.
TEXT_URL = re.search(r'TEXT_URL = \\"(https://[^"\\]+)', TUTORIAL.read_text()).group(1)
TEXT_FILE = "data/tinyshakespeare.txt"


def commands_in(document: str) -> list[str]:
    """The commands of a document's bash blocks, continuation lines joined, comments and
    `&&` chains split off."""
    text = (REPO_ROOT / document).read_text(encoding="utf-8")
    commands = []
    for block in BASH_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s+#\s", line)[0].strip()
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def write_texts(folder: Path) -> None:
    """The play under the name the documents use, and the other texts they name; every letter
    and digit appears, so that every documented prompt encodes with a char tokenizer."""
    play = make_play(60_000) + f"ALL:\n{string.ascii_letters} {string.digits}\n\n"
    for name in (TEXT_FILE, "my.txt", "other.txt"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(play)


def first_of_each_sweep(overrides: list[str]) -> list[str]:
    """A multirun's overrides with each swept value list cut to its first value."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [
        f"{o.get_key_element()}={next(o.sweep_string_iterator())}" if o.is_sweep_override()
        else o.input_line
        for o in parsed
    ]  # fmt: skip


def fill_placeholders(argument: str, runs: list[Path]) -> str:
    """<run> is the newest run trained so far, <other run> the one before, <sweep> a folder
    that holds runs."""
    names = {"<run>": -1, "<other run>": -2}
    for placeholder, index in names.items():
        if placeholder in argument:
            run = runs[index] if len(runs) >= -index else Path("outputs/train/runs/missing")
            argument = re.sub(r"outputs/train/runs/" + placeholder, str(run), argument)
            argument = argument.replace(placeholder, str(run))
    return argument.replace("outputs/train/multiruns/<sweep>", "outputs/train/runs")


def run_folder(config_name: str, overrides: list[str]) -> Path:
    """The folder Hydra would run the command in (conf/hydra/default.yaml, an experiment's
    hydra.run.dir), claimed as Hydra claims it."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    return Path(OmegaConf.select(cfg, "hydra.run.dir"))


def is_local(cfg: DictConfig) -> bool:
    """Whether the command needs only what is on this machine: no hub download, no GPU."""
    sources = [cfg.get("init_from"), cfg.get("ckpt_path")]
    if any(s and not Path(s).exists() for s in sources if isinstance(s, str)):
        return False  # a 🤗 Hub id
    data = cfg.get("data")
    if data is not None and not (data.get("path") and Path(data.path).is_file()):
        return False
    return cfg.get("hardware", {}).get("accelerator", "cpu") in ("cpu", "auto")


def replay(document: str, folder: Path) -> dict[str, list[str]]:
    """Run or compose every command of `document` in `folder`; return them by outcome."""
    outcome: dict[str, list[str]] = {"ran": [], "composed": [], "shell": []}
    runs: list[Path] = []
    for command in commands_in(document):
        if command.split()[0] in SHELL:  # git clone <tinylm's repository>: not shell-quoted
            check_shell_command(
                command.split() if command.startswith("git ") else shlex.split(command)
            )
            outcome["shell"].append(command)
            continue
        argv = shlex.split(command)
        assert argv[0] in ("python", ".venv/bin/python"), f"{command}: teach this test its kind"
        if argv[1].startswith("benchmarks/"):
            check_benchmark_flags(argv[1], argv[2:])
            outcome["shell"].append(command)
            continue
        script, *overrides = argv[1:]
        assert script.startswith("scripts/") and (REPO_ROOT / script).is_file(), command
        multirun = "-m" in overrides
        overrides = [fill_placeholders(o, runs) for o in overrides if o != "-m"]
        if multirun:
            overrides = first_of_each_sweep(overrides)
        name = Path(script).stem
        cfg = compose_config(name, *overrides, f"paths.output_dir={folder / 'composed'}")
        OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
        if document == "docs/learning-path.md" and name == "train":
            assert cfg.trainer.max_steps <= 300, command  # the path's runs take under a minute
            assert cfg.model.n_layer <= 2 and cfg.model.d_model <= 64, command
        if multirun or cfg.get("resume") or name not in COMMANDS or not is_local(cfg):
            outcome["composed"].append(command)
            continue
        cheap = [*overrides, *cheap_settings(name, cfg)]
        output_dir = run_folder(name, cheap)
        COMMANDS[name](compose_config(name, *cheap, f"paths.output_dir={output_dir}"))
        if name == "train":
            runs.append(output_dir)
        outcome["ran"].append(command)
    return outcome


def cheap_settings(name: str, cfg: DictConfig) -> list[str]:
    """Overrides, after the documented ones, that make a command quick on the test's data."""
    if name == "train":
        return [*FEW_STEPS, f"paths.cache_dir={Path('cache').resolve()}"]
    if name == "generate" and cfg.max_new_tokens > 20:
        return ["max_new_tokens=20"]
    if name == "eval":
        return ["limit_batches=2"]
    return []


def check_shell_command(argv: list[str]) -> None:
    if argv[0] == "make":
        targets = re.findall(r"^([\w-]+):", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
        assert argv[1] in targets, argv
        for argument in argv[2:]:  # make train ARGS="...": overrides of train.py
            assert argument.startswith("ARGS="), argv
            compose_config("train", *shlex.split(argument.removeprefix("ARGS=")))
    elif argv[0] == "curl":
        assert argv[-1] == TEXT_URL and argv[argv.index("-o") + 1] == TEXT_FILE, argv
    elif argv[0] == "bash":
        assert (REPO_ROOT / argv[1]).is_file(), argv


def check_benchmark_flags(script: str, arguments: list[str]) -> None:
    source = (REPO_ROOT / script).read_text(encoding="utf-8")
    for flag in (a for a in arguments if a.startswith("--")):
        assert f'"{flag}"' in source, f"{script} has no {flag}"


def test_the_learning_path_uses_the_text_the_readme_downloads():
    learning_path = OmegaConf.load(CONF_DIR / "experiment" / "learning_path.yaml")
    assert learning_path.data.path == TEXT_FILE
    for document in DOCUMENTS:
        assert any(TEXT_URL in command for command in commands_in(document)), document


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_documented_command_works(document, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_texts(tmp_path)
    outcome = replay(document, tmp_path)
    print({kind: len(commands) for kind, commands in outcome.items()})
    # Most commands run for real; the ones composed need what a test machine lacks.
    assert len(outcome["ran"]) >= 10 and len(outcome["ran"]) > len(outcome["composed"]), outcome
    # The files the documents promise are where they say.
    text = (REPO_ROOT / document).read_text(encoding="utf-8")
    for promised in re.findall(r"`(outputs/\w+/runs/<time>/[\w.]+)`", text):
        assert list(tmp_path.glob(promised.replace("<time>", "*"))), promised


def test_commands_are_collected_with_their_continuations_and_without_comments(tmp_path):
    assert "python scripts/train.py experiment=learning_path name=baseline" in commands_in(
        "docs/learning-path.md"
    )
    readme = commands_in("README.md")
    assert (
        "make train" in readme
        and "make install" in readme
        and "source .venv/bin/activate" in readme
    )
    assert all(not c.endswith("\\") and "  #" not in c for c in readme)
    assert first_of_each_sweep(["model=tiny,small", "'prompt=[a,b]'".strip("'"), "x=1"]) == [
        "model=tiny", "prompt=[a,b]", "x=1"
    ]  # fmt: skip


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("document", ["README.md", *sorted(p.relative_to(REPO_ROOT).as_posix()
                                      for p in (REPO_ROOT / "docs").glob("*.md"))])  # fmt: skip
def test_every_link_to_a_file_or_heading_of_the_repository_resolves(document):
    source = REPO_ROOT / document
    for target in re.findall(r"\]\(([^)\s]+)\)", source.read_text(encoding="utf-8")):
        if re.match(r"https?://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (source.parent / path).resolve() if path else source
        assert linked.exists(), f"{document}: {target}"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.MULTILINE)
            assert anchor in {slug(h) for h in headings}, f"{document}: {target}"
