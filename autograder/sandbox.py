"""Run a student notebook in a sandbox and talk to it.

Isolation (Linux, no Docker, no root needed where unprivileged user namespaces are allowed):
- new mount, PID, network and IPC namespaces (`unshare`), and a user namespace unless the grader
  is root (then the notebook runs as a fresh unprivileged uid instead);
- a fresh root filesystem built from a whitelist (system directories, the Python installation
  and the virtual environment, all read-only; the notebook writes only to small tmpfs mounts);
  the host's root is detached with `pivot_root`, so the course repository, solutions, hidden
  tests, references and other students' submissions are simply not there;
- every capability dropped before student code runs (no remounting, no escaping);
- no network; rlimits on memory, file size and core dumps; a wall-clock timeout that kills the
  whole PID namespace; captured output capped.
Where namespaces are not available the worker still runs in its own process with the same limits,
and the result says that isolation was reduced.
"""
import ctypes
import os
import resource
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import sanitize, wire
from .limits import FailureKind, Limits, isolation_available, killed_for_memory, sandbox_uid, user_namespace_flags
from .staging import SANDBOX_MOUNT, mount_script, python_dirs, remove_tree, stage_submission, worker_environment
from .zygote_client import ZygoteChild, request_child

_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


class SandboxFailure(BaseException):
    """The submission's process died, overran a limit, or broke the protocol.

    `kind` (a `FailureKind`) says which, for code to branch on; `status` is written for a TA:
    "timeout after 120 s", "killed: memory limit 4096 MB", ...
    A BaseException, so that no check's `except Exception` can swallow it.
    """

    def __init__(self, kind: FailureKind, status: str):
        super().__init__(status)
        self.kind = kind
        self.status = status


class _DeadlineReader:
    """A reader whose every read gives up at the deadline (a half-written message cannot hang us)."""

    def __init__(self, stream, deadline):
        self.stream, self.deadline = stream, deadline

    def read(self, n):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.stream], [], [], remaining)[0]:
            raise TimeoutError
        return self.stream.read(n)


def _clean_ready(message: dict) -> dict:
    """The ready message in the shape the judge relies on (a notebook can send its own)."""
    errors = message.get("cell_errors")
    cleaned = []
    for entry in errors[:20] if isinstance(errors, list) else []:
        if isinstance(entry, dict) and type(entry.get("cell")) is int and isinstance(entry.get("error"), str):
            cleaned.append({"cell": entry["cell"], "error": entry["error"][:500]})
    seconds = message.get("seconds")
    cells = message.get("cells")
    return {"event": "ready", "cell_errors": cleaned,
            "cells": cells if type(cells) is int else None,
            "seconds": float(seconds) if type(seconds) in (int, float) else None}


class SandboxedNotebook:
    """A submission executing in its own sandboxed process, answering requests afterwards."""

    def __init__(self, notebook: Path, limits: Limits, isolate=None, gpu=False, deadline=None, zygote=None):
        self.notebook = Path(notebook)
        self.zygote = zygote  # address of a warm ZygoteServer, or None to start a fresh interpreter
        self.limits = limits
        self.isolated = isolation_available() if isolate is None else isolate
        self.uid = sandbox_uid() if self.isolated else None
        self.gpu = gpu
        self.output = bytearray()
        self.output_dropped = 0
        self.deadline = deadline  # shared by restarts of the same submission
        self.process = None
        self._scratch = None
        self._worker_started = False  # the worker announced itself before any notebook code ran
        self._expired = False
        self._watchdog = None
        self._drainer = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self):
        """Stage the submission and start its process: forked by the zygote when one answers,
        else a fresh interpreter (inside new namespaces when isolated). Returns at once; the
        notebook runs until `wait_ready`, and its deadline is counted from here."""
        self._scratch = stage_submission(self.notebook, self.isolated)
        work = self._scratch / "work"
        inside = SANDBOX_MOUNT if self.isolated else str(self._scratch)
        env = worker_environment(f"{inside}/lib", home=f"{inside}/work")
        mounted = python_dirs()
        root = self._scratch / "root"
        if self.isolated:
            root.mkdir()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        if self.zygote is not None:
            script = mount_script(str(root), str(self._scratch), mounted, self.gpu, then_exec=False,
                                  uid=self.uid)
            if not self._start_from_zygote(env, inside, script, req_r, resp_w):
                for fd in (req_r, req_w, resp_r, resp_w):  # the zygote may hold copies: fresh pipes
                    os.close(fd)
                req_r, req_w = os.pipe()
                resp_r, resp_w = os.pipe()
        if self.process is None:
            env.update(SEQMOD_REQUEST_FD=str(req_r), SEQMOD_RESPONSE_FD=str(resp_w))
            command = [sys.executable, f"{inside}/lib/worker.py", f"{inside}/work/submission.ipynb"]
            if self.isolated:
                script = mount_script(str(root), str(self._scratch), mounted, self.gpu, uid=self.uid)
                command = ["unshare", *user_namespace_flags(), "--mount", "--pid", "--fork", "--net", "--ipc",
                           "--kill-child", "--", "sh", "-c", script, "sandbox"] + command
            rlimits = self.limits.resource_limits(self.gpu, self.uid)

            def apply_limits():
                os.setsid()
                if _LIBC is not None:  # gone with the judge that started it
                    _LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
                for name, value in rlimits.items():
                    resource.setrlimit(getattr(resource, name), (value, value))

            self.process = subprocess.Popen(
                command, env=env, cwd=str(work), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, pass_fds=(req_r, resp_w), preexec_fn=apply_limits)
        os.close(req_r)
        os.close(resp_w)
        os.set_blocking(req_w, False)  # writes wait with select, up to the deadline
        self._requests = os.fdopen(req_w, "wb", buffering=0)
        self._responses = os.fdopen(resp_r, "rb", buffering=0)
        if self.deadline is None:
            self.deadline = time.monotonic() + self.limits.timeout_s
        # Whatever the grader is waiting on, the submission ends at its deadline.
        self._watchdog = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()
        self._drainer = threading.Thread(target=self._drain_output, daemon=True)
        self._drainer.start()

    def _start_from_zygote(self, env, inside, script, req_r, resp_w) -> bool:
        """Ask the batch's zygote for a child; False when it cannot answer (then start afresh)."""
        request = {"isolate": self.isolated, "mount_script": script, "workdir": f"{inside}/work",
                   "library": f"{inside}/lib", "notebook": f"{inside}/work/submission.ipynb",
                   "env": env, "rlimits": self.limits.resource_limits(self.gpu, self.uid),
                   "uid": self.uid}
        self.process = request_child(self.zygote, request, req_r, resp_w)
        return self.process is not None

    def _drain_output(self):
        stream = self.process.stdout
        while True:
            try:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            room = self.limits.output_bytes - len(self.output)
            if room > 0:
                self.output += chunk[:room]
            self.output_dropped += max(0, len(chunk) - max(room, 0))

    def _kill(self):
        if isinstance(self.process, ZygoteChild):
            self.process.kill()
        elif self.process is not None:
            try:  # the whole process group: unshare, its shell and the notebook
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _expire(self):
        self._expired = True
        self._kill()

    def close(self):
        """Kill the notebook's process if it still runs and remove its scratch folder."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.process is not None and self.process.poll() is None:
            self._kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if isinstance(self.process, ZygoteChild):
            self.process.release()
        for stream in (getattr(self, "_requests", None), getattr(self, "_responses", None)):
            try:
                stream and stream.close()
            except OSError:
                pass
        if self._scratch is not None:
            remove_tree(self._scratch)
            self._scratch = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # -- protocol ---------------------------------------------------------------------------
    def remaining(self) -> float:
        """Seconds left before the submission's deadline."""
        return self.deadline - time.monotonic()

    def _death(self) -> SandboxFailure:
        """Why the notebook's process stopped: its deadline, or how it ended."""
        if self._expired:
            return SandboxFailure(FailureKind.TIMEOUT, f"timeout after {self.limits.timeout_s:g} s")
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return SandboxFailure(FailureKind.UNRESPONSIVE, "the notebook's process stopped answering")
        if self._drainer is not None:
            self._drainer.join(timeout=2)  # the last words of the process, for the status
        tail = bytes(self.output[-3000:]).decode("utf-8", "replace")
        if code and not self._worker_started and "sandbox: " in tail:  # no notebook code ran yet
            line = [s for s in tail.splitlines() if s.startswith("sandbox: ")][-1]
            return SandboxFailure(FailureKind.SANDBOX_SETUP,
                                  f"grader error: could not set up the sandbox ({sanitize.line(line[9:200])})")
        if killed_for_memory(code, tail):
            return SandboxFailure(FailureKind.MEMORY, f"killed: memory limit {self.limits.memory_mb} MB")
        if code < 0 or code > 128:
            sig = -code if code < 0 else code - 128
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            return SandboxFailure(FailureKind.CRASH, f"crashed: the notebook's process died with signal {name}")
        if code == 0:
            return SandboxFailure(FailureKind.EXITED, "the notebook exited the interpreter before grading could finish")
        return SandboxFailure(FailureKind.EXITED, f"the notebook exited the interpreter (exit code {code})")

    def _timed_out(self, deadline) -> SandboxFailure:
        """The failure when a read or write gave up at `deadline`: the call's or the submission's."""
        if self._expired:
            return self._death()
        if deadline < self.deadline:
            return SandboxFailure(FailureKind.CALL_TIMEOUT, f"a call into the notebook did not return within "
                                                            f"{self.limits.call_timeout_s:g} s")
        return SandboxFailure(FailureKind.TIMEOUT, f"timeout after {self.limits.timeout_s:g} s")

    def _read(self, call_deadline=None, tag=None):
        """The next message; with `tag`, the next one tagged so (others are skipped unread)."""
        deadline = self.deadline if call_deadline is None else min(self.deadline, call_deadline)
        reader = _DeadlineReader(self._responses, deadline)
        try:
            while True:
                size, found = wire.read_header(reader)
                if tag is not None and found != tag:
                    wire.skip(reader, size)
                    continue
                return wire.parse(wire.read_exactly(reader, size))
        except TimeoutError:
            raise self._timed_out(deadline) from None
        except EOFError:
            raise self._death() from None
        except (wire.WireError, ValueError, RecursionError, MemoryError) as error:
            raise SandboxFailure(FailureKind.PROTOCOL,
                                 f"the notebook's process sent garbage ({sanitize.line(error, 200)})") from None

    def wait_ready(self) -> dict:
        """Wait until every cell has run; the cleaned ready message (cell errors, cells, seconds).
        Raises `SandboxFailure` when the notebook cannot be run or its process dies first."""
        while True:
            message = self._read()
            if message.get("event") == "started":
                self._worker_started = True
                continue
            break
        if message.get("event") == "failed":
            error = sanitize.line(message.get("error"), 300)
            raise SandboxFailure(FailureKind.NOTEBOOK_FAILED,
                                 f"could not run the notebook (the notebook's process said: {error})")
        if message.get("event") != "ready":
            raise SandboxFailure(FailureKind.PROTOCOL, "the notebook's process broke the grading protocol")
        return _clean_ready(message)

    def _send(self, data: bytes, deadline):
        view = memoryview(data)
        fd = self._requests.fileno()
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                raise self._timed_out(deadline)
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
            except OSError:
                raise self._death() from None

    def request(self, message: dict) -> dict:
        """Send one request to the worker and return its reply, within the call's time budget;
        raises `SandboxFailure` when the process dies, overruns or breaks the protocol."""
        nonce = secrets.token_hex(16)  # unguessable: replies cannot be forged ahead of time
        message = dict(message, nonce=nonce)
        call_deadline = time.monotonic() + self.limits.call_timeout_s
        self._send(wire.frame(message, nonce), min(self.deadline, call_deadline))
        while True:
            reply = self._read(call_deadline, tag=nonce)
            if reply.get("nonce") == nonce:
                return reply

    def output_text(self) -> str:
        """What the notebook printed (capped at `Limits.output_bytes`, with a note of what was dropped)."""
        text = bytes(self.output).decode("utf-8", "replace")
        if self.output_dropped:
            text += f"\n[... {self.output_dropped} more bytes of output dropped]"
        return text
