"""The real scripts, each in its own process, without paying for their imports each time.

`python scripts/<name>.py …` spends seconds importing torch, Lightning and Hydra before it
looks at its arguments. A server imports them once, then forks a child for each request: the
child takes the script's argv, working directory and sys.path as `python <script>` sets them,
its stdin from /dev/null and its stdout and stderr into files, and runs the script's file as
`__main__` (runpy). What the imports printed is written first into the child's output, as a
fresh interpreter would print it. The exit status is the script's own: what SystemExit, an
uncaught exception (with its traceback) or a signal makes of it. The child's environment is the
request's; the server was started with the same one, up to PYTEST_CURRENT_TEST (pytest changes
it at every test phase; no import reads it), so one server serves every test of a worker.

A script can also be started in the background (`start`: what subprocess.Popen gives the tests
that signal, stop or kill a script while it runs); the server reaps it when asked (`wait`).

Requests and replies are JSON lines on two pipes whose descriptors the client passes:
    python tests/script_server.py <read fd> <write fd>
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
# What the scripts import before they read their arguments (each imports its command).
PRELOADED = ["torch", "lightning", "hydra", "tinylm.commands.train", "tinylm.commands.eval",
             "tinylm.commands.generate", "tinylm.commands.prepare_data",
             "tinylm.commands.export", "tinylm.commands.compare",
             "tinylm.commands.attention", "tinylm.commands.serve"]  # fmt: skip


def preload() -> dict[int, bytes]:
    """Import PRELOADED; what that printed on stdout (1) and stderr (2)."""
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    captures = {fd: tempfile.TemporaryFile() for fd in (1, 2)}  # noqa: SIM115 (closed below)
    for fd, capture in captures.items():
        os.dup2(capture.fileno(), fd)
    try:
        for module in PRELOADED:
            __import__(module)
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        for fd, original in saved.items():
            os.dup2(original, fd)
            os.close(original)
    printed = {}
    for fd, capture in captures.items():
        capture.seek(0)
        printed[fd] = capture.read()
        capture.close()
    return printed


def serve(requests_fd: int, replies_fd: int) -> dict:
    """Answer requests until the client closes its end; returns only in a forked child, with the
    request that child is to run."""
    requests, replies = os.fdopen(requests_fd, "r"), os.fdopen(replies_fd, "w")
    for line in requests:
        request = json.loads(line)
        if "wait" in request:  # for a child started in the background: its exit status
            _, status = os.waitpid(request["wait"], 0)
            reply = {"returncode": os.waitstatus_to_exitcode(status)}
        else:
            sys.stdout.flush(), sys.stderr.flush()  # nothing of the server's in a child's output
            pid = os.fork()
            if pid == 0:
                requests.close(), replies.close()
                return request
            if request["background"]:
                reply = {"pid": pid}
            else:
                _, status = os.waitpid(pid, 0)
                reply = {"returncode": os.waitstatus_to_exitcode(status)}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    sys.exit(0)


def become_the_script(request: dict, printed_on_import: dict[int, bytes]) -> None:
    """This process, as `python <script> <args>` started in `cwd` with its output in files."""
    signal.alarm(request["timeout"])  # a hung script ends with -SIGALRM instead of hanging
    with open(os.devnull) as stdin:
        os.dup2(stdin.fileno(), 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        with open(path, "wb") as output:
            output.write(printed_on_import[fd])
            output.flush()
            os.dup2(output.fileno(), fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    script = request["script"]
    sys.argv = [script, *request["args"]]
    sys.path[0] = str(Path(script).resolve().parent)
    runpy.run_path(script, run_name="__main__")


def script_request(
    script: Path, args: tuple[str, ...], cwd: Path, env: dict[str, str], stdout: Path,
    stderr: Path, timeout: int, background: bool,
) -> dict:  # fmt: skip
    """What the server needs to become `python <script> <args>` (see become_the_script)."""
    return {"script": str(script), "args": list(args), "cwd": str(cwd), "env": env,
            "stdout": str(stdout), "stderr": str(stderr), "timeout": timeout,
            "background": background}  # fmt: skip


class ScriptServer:
    """The client: `run` is subprocess.run(capture_output=True, text=True) of a script."""

    def __init__(self, env: dict[str, str]):
        self.outputs = Path(tempfile.mkdtemp(prefix="script-server-"))
        request_read, self.request_write = os.pipe()
        self.reply_read, reply_write = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(request_read), str(reply_write)],
            pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        os.close(request_read), os.close(reply_write)
        self.requests = os.fdopen(self.request_write, "w")
        self.replies = os.fdopen(self.reply_read)
        self.lock = threading.RLock()  # one request at a time; run holds it till it has read

    def ask(self, request: dict) -> dict:
        with self.lock:
            self.requests.write(json.dumps(request) + "\n")
            self.requests.flush()
            reply = self.replies.readline()
        if not reply:
            raise RuntimeError(f"the script server exited ({self.process.wait()})")
        return json.loads(reply)

    def run(
        self, script: Path, *args: str, cwd: Path, env: dict[str, str], timeout: int = 600
    ) -> subprocess.CompletedProcess:
        stdout, stderr = self.outputs / "stdout", self.outputs / "stderr"
        request = script_request(script, args, cwd, env, stdout, stderr, timeout, background=False)
        with self.lock:  # the output files are the server's: one run at a time
            returncode = self.ask(request)["returncode"]
            return subprocess.CompletedProcess(
                [sys.executable, str(script), *args], returncode, stdout.read_text(),
                stderr.read_text(),
            )  # fmt: skip

    def start(
        self, script: Path, *args: str, cwd: Path, env: dict[str, str], stdout: Path,
        stderr: Path, timeout: int = 600,
    ) -> BackgroundScript:  # fmt: skip
        request = script_request(script, args, cwd, env, stdout, stderr, timeout, background=True)
        return BackgroundScript(self, self.ask(request)["pid"])

    def close(self) -> None:
        self.requests.close()
        self.replies.close()
        self.process.wait(timeout=60)
        shutil.rmtree(self.outputs, ignore_errors=True)


class BackgroundScript:
    """A script that ScriptServer.start started: what the tests use of subprocess.Popen. Its
    own alarm (the `timeout` it was started with) bounds how long wait() can take."""

    def __init__(self, server: ScriptServer, pid: int):
        self.server, self.pid, self.returncode = server, pid, None

    def poll(self) -> int | None:
        # Asked of /proc, not of the server: tests poll in tight loops while the script runs.
        if self.returncode is None and not has_exited(self.pid):
            return None
        return self.wait()

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self.server.ask({"wait": self.pid})["returncode"]
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:  # once reaped, its pid may be another process's
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def has_exited(pid: int) -> bool:
    """Whether the server's child `pid` has ended (a zombie until the server reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # the state follows the command's name


SERVERS: dict[frozenset, ScriptServer] = {}
# Set by pytest to the test and phase that runs: it differs at every call, and nothing reads it
# on import, so it does not make a server of its own.
PER_CALL = {"PYTEST_CURRENT_TEST"}


def server_for(env: dict[str, str]) -> ScriptServer:
    """This test process's server for environment `env` (started at first use)."""
    key = frozenset(item for item in env.items() if item[0] not in PER_CALL)
    if key in SERVERS:
        SERVERS[key] = SERVERS.pop(key)  # the most recently used last
    else:
        if len(SERVERS) >= 3:  # the least recently used goes first
            SERVERS.pop(next(iter(SERVERS))).close()
        SERVERS[key] = ScriptServer(env)
    return SERVERS[key]


def run_script(
    name: str, *args: str, cwd: Path, env: dict[str, str], timeout: int = 600
) -> subprocess.CompletedProcess:
    """`python scripts/<name>.py <args>` in its own process with environment `env`, forked from
    a server that has done the imports."""
    return server_for(env).run(SCRIPTS / f"{name}.py", *args, cwd=cwd, env=env, timeout=timeout)


def start_script(
    name: str, *args: str, cwd: Path, env: dict[str, str], stdout: Path, stderr: Path
) -> BackgroundScript:
    """`python scripts/<name>.py <args>` started in the background, as run_script runs it, its
    output into the files `stdout` and `stderr`."""
    return server_for(env).start(SCRIPTS / f"{name}.py", *args, cwd=cwd, env=env, stdout=stdout,
                                 stderr=stderr)  # fmt: skip


@atexit.register
def close_servers() -> None:
    while SERVERS:
        SERVERS.popitem()[1].close()


if __name__ == "__main__":
    # As for `python scripts/<name>.py`: the scripts' folder first (tests/ holds packages, such
    # as tests/tokenizers, that would hide installed ones).
    sys.path[0] = str(SCRIPTS)
    printed_on_import = preload()
    become_the_script(serve(int(sys.argv[1]), int(sys.argv[2])), printed_on_import)
