"""Loading from the 🤗 Hub, with one clear sentence when it cannot be reached."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tinylm.data.text_files import files_fingerprint
from tinylm.errors import DataError


def is_local(path: str) -> bool:
    """A folder laid out like the hub repository stands in for it (same loading code)."""
    return Path(path).expanduser().is_dir()


def check_dataset_path(path: str, data: str) -> None:
    """A hub dataset's data.path is a hub id or a folder laid out like the repository; a file
    there is a mistake (usually: data=text forgotten)."""
    if Path(path).expanduser().is_file():
        raise DataError(
            f"data.path={path} is a file, but data={data} reads a 🤗 Hub dataset (an id such as "
            "roneneldan/TinyStories, or a folder laid out like its repository); for your own "
            "text files use data=text data.path=..."
        )


def version_fingerprint(path: str, revision: str, pattern: str) -> dict:
    """What pins the version of a dataset: the revision of a hub repository, or the files of a
    local folder matching `pattern` (paths, sizes and modification times)."""
    if not is_local(path):
        return {"revision": revision}
    files = sorted(p for p in Path(path).expanduser().glob(pattern) if p.is_file())
    return {"files": files_fingerprint(files)}


@contextlib.contextmanager
def hub_errors_explained(dataset: str) -> Iterator[None]:
    """Turn "cannot reach the Hub" failures of `datasets` / `huggingface_hub` into a DataError
    that names the dataset and says what to do."""
    try:
        yield
    except DataError:
        raise
    except FileNotFoundError as error:
        raise DataError(
            f"The dataset {dataset!r} (or a file of it) was not found: check data.path, "
            f"data.revision and the subset. ({type(error).__name__}: {error})"
        ) from error
    except Exception as error:
        if not looks_like_a_network_failure(error):
            raise
        raise DataError(
            f"Could not download {dataset!r} from the 🤗 Hub ({type(error).__name__}). "
            "If you are offline, use a warm 🤗 cache with HF_DATASETS_OFFLINE=1, point data.path "
            "at a local copy of the dataset, or train on local files with data=text."
        ) from error


def looks_like_a_network_failure(error: BaseException) -> bool:
    """ConnectionError covers `datasets` and offline mode; huggingface_hub's HTTP client raises
    its own transport errors, which are not OSErrors."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return isinstance(error, (ConnectionError, TimeoutError)) or bool(
        names & {"TransportError", "HTTPError", "RequestError", "LocalEntryNotFoundError"}
    )
