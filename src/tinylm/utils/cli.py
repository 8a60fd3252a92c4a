"""What every entry point shares: user errors as one clear line and a non-zero exit."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

from tinylm.errors import TinyLMError

log = logging.getLogger(__name__)


def exits_cleanly_on_user_error(task: Callable[..., Any]) -> Callable[..., Any]:
    """A TinyLMError (bad config, data, checkpoint, prompt) becomes `error: <message>` on
    stderr and exit status 1 instead of a traceback; anything else is a bug and keeps its
    traceback."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except Exception as error:
            user_error = find_user_error(error)
            if user_error is None:
                raise
            log.debug("user error", exc_info=True)
            print(f"error: {user_error}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper


def find_user_error(error: BaseException | None) -> TinyLMError | None:
    """The TinyLMError behind `error`, also when Hydra's instantiate wrapped it in its own."""
    while error is not None:
        if isinstance(error, TinyLMError):
            return error
        error = error.__cause__
    return None
