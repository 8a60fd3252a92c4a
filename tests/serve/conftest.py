"""The playground around the session's trained char model: the app in process, and a real
uvicorn server on a loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.testclient import TestClient

from tinylm.checkpoint import load_checkpoint
from tinylm.commands.serve import open_socket, training_record
from tinylm.serve import Limits, Playground, create_app


def playground_for(run_folder: Path, limits: Limits) -> Playground:
    loaded = load_checkpoint(run_folder, "cpu")
    return Playground(loaded, training_record(loaded), limits)


@pytest.fixture(scope="session")
def playground(trained_run) -> Playground:
    return playground_for(trained_run / "run", Limits(max_new_tokens=300))


@pytest.fixture(scope="session")
def client(playground) -> Iterator[TestClient]:
    with TestClient(create_app(playground, ["127.0.0.1"]), base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def live_server(trained_run) -> Iterator[str]:
    """A real server (uvicorn, on a thread of this process) whose model takes one request at a
    time and lets none wait: its URL."""
    app = create_app(playground_for(trained_run / "run", Limits(waiting=0)), ["127.0.0.1"])
    listening = open_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
