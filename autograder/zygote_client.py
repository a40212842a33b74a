"""The grader's side of the warm zygote (see zygote.py): start it, ask it for children.

`ZygoteServer` starts one zygote for a grading batch; `request_child` asks it to fork a
notebook's process, whose `Popen`-like handle is a `ZygoteChild`. When the zygote cannot
answer, sandboxes start a fresh interpreter each instead.
"""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .staging import stage_public_library, worker_environment

# Marker files in the zygote's folder: a sandbox waiting for the socket stops waiting on either.
ZYGOTE_FAILED, ZYGOTE_READY = "failed", "ready"


class ZygoteServer:
    """One warm zygote (see zygote.py) for a grading batch: imports torch once, forks per notebook.

    Use as a context manager; `address` is None when it could not start, and sandboxes then
    start a fresh interpreter each, as before.
    """

    def __init__(self, startup_timeout_s=120.0, preload=()):
        """`preload`: modules to import in the zygote besides its own list (those the assignment's
        notebook imports, say scikit-learn's datasets: 3 s per submission otherwise)."""
        self.startup_timeout_s = startup_timeout_s
        self.preload = tuple(preload)
        self.address = None
        self._folder = None
        self._process = None

    def __enter__(self):
        """Launch the zygote and return at once: its imports overlap the judges' start-up.
        A sandbox that asks before it is ready waits for it (see `connect_to_zygote`)."""
        if not sys.platform.startswith("linux") or os.environ.get("SEQMOD_ZYGOTE") == "off":
            return self  # fork after importing torch is only safe to rely on here
        self._folder = Path(tempfile.mkdtemp(prefix="seqmod-zygote-")).resolve()
        os.chmod(self._folder, 0o700)  # the socket is reachable by the grader only
        stage = self._folder / "lib"
        stage_public_library(stage)
        self.address = str(self._folder / "socket")
        with open(self._folder / "zygote.log", "wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, str(stage / "zygote.py"), self.address, *self.preload], cwd=str(stage),
                env=worker_environment(str(stage), home=str(self._folder)),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        threading.Thread(target=self._watch_start, args=(self._process, self._folder), daemon=True).start()
        return self

    def _watch_start(self, process, folder):
        """Mark the zygote ready, and failed when it does not start or dies later: sandboxes
        that wait for it then start afresh at once instead of waiting."""
        ready = select.select([process.stdout], [], [], self.startup_timeout_s)[0]
        if ready and process.stdout.readline().strip() == b"ready":
            (folder / ZYGOTE_READY).touch()
            process.wait()
        else:
            process.kill()
        try:
            (folder / ZYGOTE_FAILED).touch()
        except OSError:
            pass  # the batch is over and the folder gone

    def __exit__(self, *exc):
        if self._process is not None:
            self._process.stdin.close()  # the zygote ends itself and kills what it started
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process.stdout.close()
            self._process = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def connect_to_zygote(address, wait_s=120.0):
    """A connection to the zygote at `address`, waiting while it starts; None if it never does."""
    folder = Path(address).parent
    give_up = time.monotonic() + wait_s
    while True:
        try:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except (OSError, AttributeError):  # no such sockets here (not Linux): start afresh
            return None
        try:
            connection.connect(address)
            return connection
        except (FileNotFoundError, ConnectionRefusedError):
            connection.close()
            gone = (folder / ZYGOTE_FAILED).exists() or (folder / ZYGOTE_READY).exists()
            if gone or not folder.exists() or time.monotonic() > give_up:
                return None
            time.sleep(0.05)
        except OSError:
            connection.close()
            return None


class ZygoteChild:
    """The `Popen`-like handle of a notebook process forked by the zygote.

    Its exit code arrives over the connection (the zygote is its parent); killing goes through
    the zygote too, which can never hit a recycled process id.
    """

    def __init__(self, connection, pid, stdout):
        self.connection, self.pid, self.stdout = connection, pid, stdout
        self.returncode = None

    def poll(self):
        """The exit code if the child has ended, else None (as `Popen.poll`)."""
        if self.returncode is None:
            self._receive(0)
        return self.returncode

    def wait(self, timeout=None):
        """The exit code once the child ends; `subprocess.TimeoutExpired` after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired("notebook", timeout)
            self._receive(remaining)
        return self.returncode

    def _receive(self, timeout):
        if self.connection is None:
            return
        if not select.select([self.connection], [], [], timeout)[0]:
            return
        try:
            message = json.loads(self.connection.recv(65536) or b"{}")
        except (OSError, ValueError):
            message = {}
        self.returncode = int(message.get("exit", -signal.SIGKILL))  # silence: the zygote died

    def kill(self):
        """Ask the zygote to kill the child (and its process group)."""
        try:
            self.connection.send(b"kill")
        except OSError:
            pass

    def release(self):
        """Close the connection; the zygote kills a child whose client hung up."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def request_child(address, request: dict, requests_fd: int, responses_fd: int):
    """Ask the zygote at `address` to fork a notebook's process for `request` (see zygote.py),
    handing it the read end of the requests pipe and the write end of the responses pipe.
    The child's handle, or None when the zygote cannot answer (then start afresh)."""
    connection = connect_to_zygote(address)
    if connection is None:
        return None
    out_r, out_w = os.pipe()
    try:
        connection.settimeout(30)
        socket.send_fds(connection, [json.dumps(request).encode()], [requests_fd, responses_fd, out_w])
        reply = json.loads(connection.recv(65536) or b"{}")
        pid = int(reply["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        connection.close()
        os.close(out_r)
        os.close(out_w)
        return None
    os.close(out_w)
    connection.settimeout(None)
    return ZygoteChild(connection, pid, os.fdopen(out_r, "rb", buffering=0))
