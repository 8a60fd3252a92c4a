"""The body of every script: each `tinylm.commands.<name>` module holds one function that takes
the composed Hydra config and returns a result, and `scripts/<name>.py` hands it the config
through `run`, which every entry point shares:

    @hydra.main(config_path="../conf", config_name="generate", version_base="1.3")
    def main(cfg: DictConfig) -> None:
        run(generate, cfg)

Commands sit on top of the library (training, generation, evaluation, experiments, data, model,
tokenizers); nothing in the library imports them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from tinylm.commands.settings import settings_of
from tinylm.errors import TinyLMError
from tinylm.runs.claim import register_resolvers
from tinylm.runs.folder import RunFolder
from tinylm.runs.signals import Interrupted, signals_stop_at_once
from tinylm.schema import check_settings
from tinylm.utils.hydra import in_sweep

log = logging.getLogger(__name__)
Result = TypeVar("Result")

# conf/hydra/default.yaml names run folders with ${unique_dir:...} and ${run_dir:...}: registered
# when a script imports its command, before Hydra composes a config (also in the processes DDP
# starts).
register_resolvers()


def run(command: Callable[[DictConfig], Result], cfg: DictConfig) -> Result | None:
    """Run `command` on `cfg`: the one place where a mistake of the user's becomes one sentence.

    Every check of user input raises a TinyLMError (bad config, data, checkpoint, prompt) that
    says what was wrong and what to do; here it becomes `error: <message>` on stderr and exit
    status 1 instead of a traceback. Anything else is a bug and keeps its traceback. The settings
    are checked first against the command's schema (tinylm.commands.settings), before the
    command writes anything — except a resumed training run's: what it runs is the run's own
    config with these overrides on top, which the train command checks once it has merged them.

    In a sweep, a job whose settings are refused fails alone: its error goes to its log and its
    result.json, and the sweep goes on with the next job. Ctrl-C or SIGTERM stop the command at
    once (training stops after its step instead), with exit status 130 or 143.
    """
    with signals_stop_at_once():
        try:
            if not cfg.get("resume"):
                check_settings(cfg, settings_of(command))
            return command(cfg)
        except Interrupted as interrupted:
            print(f"{interrupted}; nothing was left half-written.", file=sys.stderr)
            raise SystemExit(interrupted.exit_status) from None
        except Exception as error:
            user_error = find_user_error(error)
            if user_error is None:
                raise
            log.debug("user error", exc_info=True)
            if in_sweep():
                from tinylm.runs.results import record_failed_job  # imports Lightning

                record_failed_job(RunFolder(cfg.paths.output_dir), str(user_error))
                return None
            print(f"error: {user_error}", file=sys.stderr)
            raise SystemExit(1) from None


def find_user_error(error: BaseException | None) -> TinyLMError | None:
    """The TinyLMError behind `error`, also when Hydra's instantiate wrapped it in its own."""
    while error is not None:
        if isinstance(error, TinyLMError):
            return error
        error = error.__cause__
    return None
