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
import json
import os
import resource
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import sanitize, wire

PACKAGE = Path(__file__).resolve().parent
SANDBOX_MOUNT = "/sandbox"
SYSTEM_DIRS = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"]
ZYGOTE_FAILED, ZYGOTE_READY = "failed", "ready"
_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


@dataclass
class Limits:
    timeout_s: float = 300.0  # defaults for the command line come from course.toml
    memory_mb: int = 4096
    output_bytes: int = 1_000_000
    file_mb: int = 256
    call_timeout_s: float = 60.0  # one call into a graded function
    processes: int = 256  # processes and threads of one notebook (applied when grading as root)


class SandboxFailure(BaseException):
    """The submission's process died, overran a limit, or broke the protocol.

    `status` is written for a TA: "timeout after 120 s", "killed: memory limit 4096 MB", ...
    A BaseException, so that no check's `except Exception` can swallow it.
    """

    def __init__(self, status):
        super().__init__(status)
        self.status = status


_ISOLATION = None


def isolation_available() -> bool:
    """Whether namespaces can be used here (checked once per process)."""
    global _ISOLATION
    if _ISOLATION is None:
        if os.environ.get("SEQMOD_SANDBOX") == "off" or not sys.platform.startswith("linux"):
            _ISOLATION = False
        else:
            needed = all(shutil.which(t) for t in ("unshare", "mount", "pivot_root", "setpriv"))
            try:
                ok = needed and subprocess.run(
                    ["unshare", *_user_namespace_flags(), "--mount", "--pid", "--fork", "--net", "--ipc",
                     "true"], capture_output=True, timeout=20).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            _ISOLATION = bool(ok)
    return _ISOLATION


# What a notebook's process may import from the checks library while it is graded: the
# machinery a graded call runs under (tracing, timing, workloads) and what the notebook's own
# setup and submission cells use. Each assignment's check module is left out: public tests do
# not run there, and those modules compute right answers (to compare with), which a notebook
# must not be able to import as its own.
SANDBOX_CHECKS = ("__init__.py", "core.py", "trace.py", "workloads.py", "notebook.py", "submit.py",
                  "gpu_policy.txt")


def grading_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _user_namespace_flags() -> list:
    """A grader that is root needs no user namespace: the notebook then runs as an unused,
    unprivileged uid (with root's uid it would own, and read, root's files in /etc and /usr).
    Anyone else maps their own uid to root inside a new user namespace."""
    return [] if grading_as_root() else ["--user", "--map-root-user"]


def sandbox_uid():
    """The uid a notebook runs as when the grader is root: one no account uses, fresh per sandbox,
    so that the process limit counts this sandbox's processes only. None when not root."""
    return 2_000_000 + secrets.randbelow(1_000_000) if grading_as_root() else None


def _readable_by_all(folder: Path):
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def stage_public_library(lib: Path):
    """Copy what the worker needs into the sandbox, and no more."""
    lib.mkdir(parents=True)
    shutil.copy(PACKAGE / "worker.py", lib / "worker.py")
    shutil.copy(PACKAGE / "wire.py", lib / "wire.py")
    shutil.copy(PACKAGE / "zygote.py", lib / "zygote.py")
    (lib / "autograder").mkdir()
    (lib / "autograder" / "__init__.py").write_text('"""Public part of the course autograder."""\n')
    (lib / "autograder" / "checks").mkdir()
    for name in SANDBOX_CHECKS:
        if (PACKAGE / "checks" / name).exists():
            shutil.copy(PACKAGE / "checks" / name, lib / "autograder" / "checks" / name)
    (lib / "otter").mkdir()
    (lib / "otter" / "__init__.py").write_text(
        '"""Stand-in for otter inside the grader: checks and export do nothing here."""\n'
        "class Notebook:\n"
        "    def __init__(self, *args, **kwargs):\n        pass\n"
        "    def check(self, *args, **kwargs):\n"
        "        print('(grader.check is skipped while grading)')\n"
        "    def check_all(self, *args, **kwargs):\n        pass\n"
        "    def export(self, *args, **kwargs):\n        pass\n")


def extra_package_dirs() -> list:
    """Folders of packages installed outside the Python environment (`pip install --target`),
    named in SEQMOD_SANDBOX_SITE (separated by os.pathsep). The sandbox mounts them read-only and
    puts them on the notebook's import path; `tools/gpu_check.py` uses this on a machine whose
    packages arrive as wheels. A folder that holds the grader itself is refused: a notebook must
    never import the hidden tests or the references."""
    folders = []
    for entry in os.environ.get("SEQMOD_SANDBOX_SITE", "").split(os.pathsep):
        if not entry:
            continue
        folder = Path(entry)
        if not folder.is_absolute() or not folder.is_dir():
            raise ValueError(f"SEQMOD_SANDBOX_SITE: {entry!r} is not an absolute path of a folder")
        if (folder / "autograder" / "hidden").exists() or PACKAGE.is_relative_to(folder.resolve()):
            raise ValueError(f"SEQMOD_SANDBOX_SITE: {entry!r} holds the grader; notebooks must not see it")
        folders.append(str(folder.resolve()))
    return folders


def worker_environment(library: str, home: str) -> dict:
    """The whole environment of a notebook's process (nothing of the grader's leaks in)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "PYTHONPATH": os.pathsep.join([library, *extra_package_dirs()]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MPLBACKEND": "Agg",
        "SEQMOD_GRADING": "1",
        "OMP_NUM_THREADS": os.environ.get("SEQMOD_WORKER_THREADS", "1"),
        "MKL_NUM_THREADS": os.environ.get("SEQMOD_WORKER_THREADS", "1"),
        "LANG": "C.UTF-8",
        "USER": "student",  # libraries that ask for a user name need no account for the uid
        "LOGNAME": "student",
    }
    for name in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):  # the GPUs to use; where the CUDA driver lies
        if name in os.environ:
            env[name] = os.environ[name]
    return env


class ZygoteServer:
    """One warm zygote (see zygote.py) for a grading batch: imports torch once, forks per notebook.

    Use as a context manager; `address` is None when it could not start, and sandboxes then
    start a fresh interpreter each, as before.
    """

    def __init__(self, startup_timeout_s=120.0):
        self.startup_timeout_s = startup_timeout_s
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
                [sys.executable, str(stage / "zygote.py"), self.address], cwd=str(stage),
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


def sweep_leftovers(older_than_s=24 * 3600.0):
    """Remove the scratch folders of batches that were killed (a finished batch leaves none):
    sandbox and judge folders older than a day (none lives longer than its submission's time
    limit) and zygote folders whose zygote no longer answers."""
    now = time.time()
    for folder in Path(tempfile.gettempdir()).glob("seqmod-*"):
        try:
            age = now - folder.stat().st_mtime
        except OSError:
            continue
        if folder.name.startswith(("seqmod-sandbox-", "seqmod-judge-")) and age > older_than_s:
            remove_tree(folder)
        elif folder.name.startswith("seqmod-zygote-") and age > 600:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                probe.connect(str(folder / "socket"))
            except OSError:
                remove_tree(folder)
            finally:
                probe.close()


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
        if self.returncode is None:
            self._receive(0)
        return self.returncode

    def wait(self, timeout=None):
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
        try:
            self.connection.send(b"kill")
        except OSError:
            pass

    def release(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _mount_script(root: str, scratch: str, python_dirs, gpu: bool, then_exec=True, uid=None) -> str:
    """The shell script that builds the sandbox's root filesystem and pivots into it.

    The scratch folder (the public library and the submission) is mounted read-only; the notebook
    writes only to tmpfs mounts of fixed size (its working folder, /tmp, /dev/shm), so nothing
    it writes reaches the grader's disk. `uid`: the unprivileged uid a root grader runs the
    notebook as (None: a user namespace maps the grader's own uid to root inside).
    """
    def q(p):
        return "'" + str(p).replace("'", "'\\''") + "'"

    owner = "" if uid is None else f",uid={int(uid)},gid={int(uid)}"
    # Private first: without a user namespace (a root grader) the new mount namespace would
    # otherwise share its mounts with the host's.
    lines = ["set -e", "umask 022", 'PATH="$PATH:/usr/sbin:/sbin"', "mount --make-rprivate /", f"R={q(root)}",
             'mount -t tmpfs -o size=256m,mode=755 sandbox "$R"']
    # A recursive bind is read-only only at its top: remount every submount read-only too, or
    # detach it when that is refused (a grader running as root would otherwise own their files).
    lines.append('read_only() { mount -o remount,bind,ro "$1" && '
                 'awk -v top="$1/" \'index($5, top) == 1 {print $5}\' /proc/self/mountinfo | '
                 'while read -r m; do mount -o remount,bind,ro "$m" 2>/dev/null || umount -l "$m" || '
                 '{ echo "sandbox: cannot make $m read-only"; exit 1; }; done; }')
    for d in SYSTEM_DIRS:
        src = Path("/") / d
        if src.is_symlink():
            lines.append(f'ln -s {q(os.readlink(src))} "$R/{d}"')
        elif src.is_dir():
            lines.append(f'mkdir -p "$R/{d}" && mount --rbind /{d} "$R/{d}" && read_only "$R/{d}"')
    for d in python_dirs:
        lines.append(f'mkdir -p "$R"{q(d)} && mount --rbind {q(d)} "$R"{q(d)} && read_only "$R"{q(d)}')
    lines += [
        f'mkdir -p "$R{SANDBOX_MOUNT}" && mount --bind {q(scratch)} "$R{SANDBOX_MOUNT}"',
        f'mount -o remount,bind,ro "$R{SANDBOX_MOUNT}"',
        f'mount -t tmpfs -o size=256m,mode=755{owner} work "$R{SANDBOX_MOUNT}/work"',
        f'cp "$R{SANDBOX_MOUNT}/in/submission.ipynb" "$R{SANDBOX_MOUNT}/work/submission.ipynb"',
        'mkdir -p "$R/tmp" "$R/proc" "$R/dev/shm" "$R/oldroot"',
        'chmod 1777 "$R/tmp"',
        'mount -t proc proc "$R/proc"',
        'mount -t tmpfs -o size=256m,mode=1777 shm "$R/dev/shm"',
        'for f in null zero random urandom full; do touch "$R/dev/$f"; '
        'mount --bind "/dev/$f" "$R/dev/$f"; done',
    ]
    if uid is not None:
        lines.append(f'chown {int(uid)}:{int(uid)} "$R{SANDBOX_MOUNT}/work/submission.ipynb"')
    if gpu:
        lines += ['for f in /dev/nvidia*; do [ -e "$f" ] || continue; if [ -d "$f" ]; then '
                  'mkdir -p "$R$f"; mount --rbind "$f" "$R$f"; else touch "$R$f"; '
                  'mount --bind "$f" "$R$f"; fi; done',
                  'mkdir -p "$R/sys" && mount --rbind /sys "$R/sys" && read_only "$R/sys" || true']
    lines += ['cd "$R"', "pivot_root . oldroot", "umount -l /oldroot", "rmdir /oldroot"]
    if then_exec:  # a fresh interpreter as PID 2; the zygote's child drops its privileges itself
        # The shell stays PID 1 (no exec): it keeps its capabilities, so the notebook can neither
        # trace nor signal it, and the whole namespace ends with it.
        become = "" if uid is None else f"--reuid={int(uid)} --regid={int(uid)} --clear-groups "
        lines += [f"cd {SANDBOX_MOUNT}/work",
                  f'setpriv {become}--bounding-set -all --inh-caps -all --no-new-privs -- "$@"']
    return "\n".join(lines)


class _DeadlineReader:
    """A reader whose every read gives up at the deadline (a half-written message cannot hang us)."""

    def __init__(self, stream, deadline):
        self.stream, self.deadline = stream, deadline

    def read(self, n):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.stream], [], [], remaining)[0]:
            raise TimeoutError
        return self.stream.read(n)


def remove_tree(path: Path):
    """Delete a folder whatever a notebook left in it (deep trees, odd permissions); never raises."""
    try:
        shutil.rmtree(path, ignore_errors=True)
    except BaseException:  # noqa: BLE001 - RecursionError on very deep trees
        pass
    if path.exists():
        try:
            subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            pass


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
        self._scratch = Path(tempfile.mkdtemp(prefix="seqmod-sandbox-"))
        (self._scratch / "in").mkdir()
        work = self._scratch / "work"  # inside the sandbox a tmpfs is mounted here
        work.mkdir()
        shutil.copy(self.notebook, self._scratch / "in" / "submission.ipynb")
        if not self.isolated:
            shutil.copy(self.notebook, work / "submission.ipynb")
        stage_public_library(self._scratch / "lib")
        _readable_by_all(self._scratch)
        inside = SANDBOX_MOUNT if self.isolated else str(self._scratch)
        env = worker_environment(f"{inside}/lib", home=f"{inside}/work")
        # Both spellings of each: a path through a symlink (a linked venv or home) stays valid.
        python_dirs = sorted({f(p) for p in (sys.prefix, sys.base_prefix) for f in (os.path.abspath, os.path.realpath)}
                             | set(extra_package_dirs()))
        root = self._scratch / "root"
        if self.isolated:
            root.mkdir()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        if self.zygote is not None:
            script = _mount_script(str(root), str(self._scratch), python_dirs, self.gpu, then_exec=False,
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
                script = _mount_script(str(root), str(self._scratch), python_dirs, self.gpu, uid=self.uid)
                command = ["unshare", *_user_namespace_flags(), "--mount", "--pid", "--fork", "--net", "--ipc",
                           "--kill-child", "--", "sh", "-c", script, "sandbox"] + command
            rlimits = self._rlimits()

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

    def _rlimits(self) -> dict:
        limits = {"RLIMIT_CORE": 0, "RLIMIT_FSIZE": self.limits.file_mb * 1024 * 1024}
        if not self.gpu:  # CUDA reserves huge virtual ranges; on a GPU the cap is not applied
            limits["RLIMIT_AS"] = self.limits.memory_mb * 1024 * 1024
        if self.uid is not None:  # counts the processes of this sandbox's own uid (root is exempt)
            limits["RLIMIT_NPROC"] = self.limits.processes
        return limits

    def _start_from_zygote(self, env, inside, script, req_r, resp_w) -> bool:
        """Ask the batch's zygote for a child; False when it cannot answer (then start afresh)."""
        request = {"isolate": self.isolated, "mount_script": script, "workdir": f"{inside}/work",
                   "library": f"{inside}/lib", "notebook": f"{inside}/work/submission.ipynb",
                   "env": env, "rlimits": self._rlimits(), "uid": self.uid}
        connection = connect_to_zygote(self.zygote)
        if connection is None:
            return False
        out_r, out_w = os.pipe()
        try:
            connection.settimeout(30)
            socket.send_fds(connection, [json.dumps(request).encode()], [req_r, resp_w, out_w])
            reply = json.loads(connection.recv(65536) or b"{}")
            pid = int(reply["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            connection.close()
            os.close(out_r)
            os.close(out_w)
            return False
        os.close(out_w)
        connection.settimeout(None)
        self.process = ZygoteChild(connection, pid, os.fdopen(out_r, "rb", buffering=0))
        return True

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
        return self.deadline - time.monotonic()

    def _death_status(self) -> str:
        if self._expired:
            return f"timeout after {self.limits.timeout_s:g} s"
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the notebook's process stopped answering"
        if self._drainer is not None:
            self._drainer.join(timeout=2)  # the last words of the process, for the status
        tail = bytes(self.output[-3000:]).decode("utf-8", "replace")
        if code and not self._worker_started and "sandbox: " in tail:  # no notebook code ran yet
            line = [s for s in tail.splitlines() if s.startswith("sandbox: ")][-1]
            return f"grader error: could not set up the sandbox ({sanitize.line(line[9:200])})"
        memory_words = ("MemoryError", "Cannot allocate memory", "std::bad_alloc",
                        "DefaultCPUAllocator: can't allocate", "out of memory")
        if any(w in tail for w in memory_words) or code in (-signal.SIGKILL, 137) and "alloc" in tail:
            return f"killed: memory limit {self.limits.memory_mb} MB"
        if code < 0 or code > 128:
            sig = -code if code < 0 else code - 128
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            return f"crashed: the notebook's process died with signal {name}"
        if code == 0:
            return "the notebook exited the interpreter before grading could finish"
        return f"the notebook exited the interpreter (exit code {code})"

    def _timed_out(self, deadline) -> SandboxFailure:
        if deadline < self.deadline:
            return SandboxFailure(f"a call into the notebook did not return within "
                                  f"{self.limits.call_timeout_s:g} s")
        return SandboxFailure(f"timeout after {self.limits.timeout_s:g} s")

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
                return wire.parse(wire._read_exactly(reader, size))
        except TimeoutError:
            raise (SandboxFailure(self._death_status()) if self._expired else self._timed_out(deadline)) from None
        except EOFError:
            raise SandboxFailure(self._death_status()) from None
        except (wire.WireError, ValueError, RecursionError, MemoryError) as error:
            raise SandboxFailure(f"the notebook's process sent garbage ({sanitize.line(error, 200)})") from None

    def wait_ready(self) -> dict:
        while True:
            message = self._read()
            if message.get("event") == "started":
                self._worker_started = True
                continue
            break
        if message.get("event") == "failed":
            error = sanitize.line(message.get("error"), 300)
            raise SandboxFailure(f"could not run the notebook (the notebook's process said: {error})")
        if message.get("event") != "ready":
            raise SandboxFailure("the notebook's process broke the grading protocol")
        return _clean_ready(message)

    def _send(self, data: bytes, deadline):
        view = memoryview(data)
        fd = self._requests.fileno()
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                raise SandboxFailure(self._death_status()) if self._expired else self._timed_out(deadline)
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
            except OSError:
                raise SandboxFailure(self._death_status()) from None

    def request(self, message: dict) -> dict:
        nonce = secrets.token_hex(16)  # unguessable: replies cannot be forged ahead of time
        message = dict(message, nonce=nonce)
        call_deadline = time.monotonic() + self.limits.call_timeout_s
        self._send(wire.frame(message, nonce), min(self.deadline, call_deadline))
        while True:
            reply = self._read(call_deadline, tag=nonce)
            if reply.get("nonce") == nonce:
                return reply

    def output_text(self) -> str:
        text = bytes(self.output).decode("utf-8", "replace")
        if self.output_dropped:
            text += f"\n[... {self.output_dropped} more bytes of output dropped]"
        return text
