"""`python scripts/serve.py` (conf/serve.yaml): the playground, a local web page and JSON API
around one trained model (tinylm.serve), served by uvicorn until Ctrl+C."""

from __future__ import annotations

import csv
import ipaddress
import logging
import socket
from pathlib import Path

import uvicorn
from omegaconf import DictConfig, OmegaConf

from tinylm.checkpoint import LoadedCheckpoint, load_checkpoint
from tinylm.errors import ConfigError
from tinylm.runs.folder import run_folder_of
from tinylm.serve.app import create_app
from tinylm.serve.limits import Limits
from tinylm.serve.playground import Playground
from tinylm.utils.device import resolve_device

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1"]


def serve(cfg: DictConfig) -> None:
    """Load cfg.ckpt_path's model once, print the URL, and serve the playground."""
    limits = Limits(**OmegaConf.to_container(cfg.limits))
    listening = open_socket(str(cfg.host), cfg.port)  # a taken port is told before loading
    loaded = load_checkpoint(cfg.ckpt_path, resolve_device(cfg.device))
    log.info(f"Checkpoint: {loaded.describe()}")
    app = create_app(Playground(loaded, training_record(loaded), limits), allowed_hosts(cfg.host))
    host, port = listening.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    print(f"The playground is at http://{shown_host}:{port}/ (Ctrl+C stops it)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    server.run(sockets=[listening])


def open_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a ConfigError that says why there can be none."""
    if not is_loopback(host):
        log.warning(
            f"host={host}: the playground is open to other machines; anyone who reaches port "
            f"{port} can use the model. host=127.0.0.1 keeps it to this machine."
        )
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listening = socket.socket(family, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(128)
    except OSError as error:
        raise ConfigError(
            f"Cannot listen on {host}:{port} ({error.strerror or error}); choose another port= "
            "(port=0 picks a free one) or host=."
        ) from None
    return listening


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str]:
    """The Host headers to answer: this machine's names when bound to it, else any."""
    return LOOPBACK_NAMES if is_loopback(host) else ["*"]


def training_record(loaded: LoadedCheckpoint) -> dict:
    """What the run folder says of the checkpoint: its run, steps, and the validation loss and
    bits per byte at its step (the CSV logger's metrics), None where it does not say (a
    checkpoint outside a run folder says only its step)."""
    run = run_folder_of(loaded.path)
    result = (run.read_result() if run else None) or {}
    record = {
        "run": run.path.name if run else None,
        "steps": loaded.global_step,
        "status": result.get("status"),
        "best_val_loss": result.get("best_val_loss"),
        "val_loss": None,
        "val_bpb": None,
    }
    if run is not None and loaded.global_step is not None:
        record.update(validation_at(run.metrics, loaded.global_step))
    return record


def validation_at(metrics: Path, step: int) -> dict:
    """val/loss and val/bpb of the validation at `step` in metrics.csv ({} if none)."""
    if not metrics.is_file():
        return {}
    with open(metrics, newline="") as handle:
        for row in csv.DictReader(handle):
            # Lightning logs a validation with the number of optimizer steps before the last.
            if row.get("val/loss") and row.get("step") and int(row["step"]) + 1 == step:
                bpb = row.get("val/bpb")
                return {"val_loss": float(row["val/loss"]), "val_bpb": float(bpb) if bpb else None}
    return {}
