"""Run a student notebook in a sandbox and talk to it.

Isolation (Linux, no Docker, no root needed where unprivileged user namespaces are allowed):
- new user, mount, PID and network namespaces (`unshare`);
- a fresh root filesystem built from a whitelist (system directories, the Python installation
  and the virtual environment, all read-only; a private scratch directory); the host's root is
  detached with `pivot_root`, so the course repository, solutions, hidden tests, references and
  other students' submissions are simply not there;
- every capability dropped before student code runs (no remounting, no escaping);
- no network; rlimits on memory, file size and core dumps; a wall-clock timeout that kills the
  whole PID namespace; captured output capped.
Where namespaces are not available the worker still runs in its own process with the same limits,
and the result says that isolation was reduced.
"""
import os
import resource
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import wire

PACKAGE = Path(__file__).resolve().parent
SANDBOX_MOUNT = "/sandbox"
SYSTEM_DIRS = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"]


@dataclass
class Limits:
    timeout_s: float = 300.0  # defaults for the command line come from course.toml
    memory_mb: int = 4096
    output_bytes: int = 1_000_000
    file_mb: int = 256
    call_timeout_s: float = 60.0  # one call into a graded function


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
                    ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
                     "--net", "true"], capture_output=True, timeout=20).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            _ISOLATION = bool(ok)
    return _ISOLATION


def stage_public_library(lib: Path):
    """Copy what the worker needs into the sandbox: the public checks library and no more."""
    lib.mkdir(parents=True)
    shutil.copy(PACKAGE / "worker.py", lib / "worker.py")
    shutil.copy(PACKAGE / "wire.py", lib / "wire.py")
    (lib / "autograder").mkdir()
    (lib / "autograder" / "__init__.py").write_text('"""Public part of the course autograder."""\n')
    shutil.copytree(PACKAGE / "checks", lib / "autograder" / "checks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (lib / "otter").mkdir()
    (lib / "otter" / "__init__.py").write_text(
        '"""Stand-in for otter inside the grader: checks and export do nothing here."""\n'
        "class Notebook:\n"
        "    def __init__(self, *args, **kwargs):\n        pass\n"
        "    def check(self, *args, **kwargs):\n"
        "        print('(grader.check is skipped while grading)')\n"
        "    def check_all(self, *args, **kwargs):\n        pass\n"
        "    def export(self, *args, **kwargs):\n        pass\n")


def _mount_script(root: str, scratch: str, python_dirs, gpu: bool) -> str:
    q = lambda p: "'" + str(p).replace("'", "'\\''") + "'"  # noqa: E731
    lines = ["set -e", 'PATH="$PATH:/usr/sbin:/sbin"', f"R={q(root)}", 'mount -t tmpfs -o size=256m,mode=755 sandbox "$R"']
    for d in SYSTEM_DIRS:
        src = Path("/") / d
        if src.is_symlink():
            lines.append(f'ln -s {q(os.readlink(src))} "$R/{d}"')
        elif src.is_dir():
            lines.append(f'mkdir -p "$R/{d}" && mount --rbind /{d} "$R/{d}" && '
                         f'mount -o remount,bind,ro "$R/{d}"')
    for d in python_dirs:
        lines.append(f'mkdir -p "$R"{q(d)} && mount --rbind {q(d)} "$R"{q(d)} && '
                     f'mount -o remount,bind,ro "$R"{q(d)}')
    lines += [
        f'mkdir -p "$R{SANDBOX_MOUNT}" && mount --bind {q(scratch)} "$R{SANDBOX_MOUNT}"',
        'mkdir -p "$R/tmp" "$R/proc" "$R/dev/shm" "$R/oldroot"',
        'chmod 1777 "$R/tmp"',
        'mount -t proc proc "$R/proc"',
        'mount -t tmpfs -o size=256m shm "$R/dev/shm"',
        'for f in null zero random urandom full; do touch "$R/dev/$f"; '
        'mount --bind "/dev/$f" "$R/dev/$f"; done',
    ]
    if gpu:
        lines += ['for f in /dev/nvidia*; do [ -e "$f" ] || continue; if [ -d "$f" ]; then '
                  'mkdir -p "$R$f"; mount --rbind "$f" "$R$f"; else touch "$R$f"; '
                  'mount --bind "$f" "$R$f"; fi; done',
                  'mkdir -p "$R/sys" && mount --rbind /sys "$R/sys" && mount -o remount,bind,ro "$R/sys" || true']
    lines += [
        'cd "$R"', "pivot_root . oldroot", "umount -l /oldroot", "rmdir /oldroot",
        f"cd {SANDBOX_MOUNT}/work",
        'exec setpriv --bounding-set -all --inh-caps -all --no-new-privs -- "$@"',
    ]
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


class SandboxedNotebook:
    """A submission executing in its own sandboxed process, answering requests afterwards."""

    def __init__(self, notebook: Path, limits: Limits, isolate=None, gpu=False, deadline=None):
        self.notebook = Path(notebook)
        self.limits = limits
        self.isolated = isolation_available() if isolate is None else isolate
        self.gpu = gpu
        self.output = bytearray()
        self.output_dropped = 0
        self.deadline = deadline  # shared by restarts of the same submission
        self.process = None
        self._scratch = None
        self._ready_seen = False

    # -- life cycle -------------------------------------------------------------------------
    def start(self):
        self._scratch = Path(tempfile.mkdtemp(prefix="seqmod-sandbox-"))
        os.chmod(self._scratch, 0o755)
        work = self._scratch / "work"
        work.mkdir()
        shutil.copy(self.notebook, work / "submission.ipynb")
        stage_public_library(self._scratch / "lib")
        inside = SANDBOX_MOUNT if self.isolated else str(self._scratch)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": f"{inside}/work",
            "PYTHONPATH": f"{inside}/lib",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "MPLBACKEND": "Agg",
            "SEQMOD_GRADING": "1",
            "OMP_NUM_THREADS": os.environ.get("SEQMOD_WORKER_THREADS", "1"),
            "MKL_NUM_THREADS": os.environ.get("SEQMOD_WORKER_THREADS", "1"),
            "SEQMOD_REQUEST_FD": str(req_r),
            "SEQMOD_RESPONSE_FD": str(resp_w),
            "LANG": "C.UTF-8",
        }
        if "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        command = [sys.executable, f"{inside}/lib/worker.py", f"{inside}/work/submission.ipynb"]
        if self.isolated:
            root = self._scratch / "root"
            root.mkdir()
            python_dirs = sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)})
            script = _mount_script(str(root), str(self._scratch), python_dirs, self.gpu)
            command = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
                       "--net", "--kill-child", "--", "sh", "-c", script, "sandbox"] + command
        else:
            env["HOME"] = str(work)
        limits, gpu = self.limits, self.gpu

        def apply_limits():
            os.setsid()
            if not gpu:  # CUDA reserves huge virtual ranges; on a GPU the cap is not applied
                memory = limits.memory_mb * 1024 * 1024
                resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            size = limits.file_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

        self.process = subprocess.Popen(
            command, env=env, cwd=str(work), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, pass_fds=(req_r, resp_w), preexec_fn=apply_limits)
        os.close(req_r)
        os.close(resp_w)
        self._requests = os.fdopen(req_w, "wb", buffering=0)
        self._responses = os.fdopen(resp_r, "rb", buffering=0)
        if self.deadline is None:
            self.deadline = time.monotonic() + limits.timeout_s
        threading.Thread(target=self._drain_output, daemon=True).start()

    def _drain_output(self):
        stream = self.process.stdout
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                return
            room = self.limits.output_bytes - len(self.output)
            if room > 0:
                self.output += chunk[:room]
            self.output_dropped += max(0, len(chunk) - max(room, 0))

    def close(self):
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for stream in (getattr(self, "_requests", None), getattr(self, "_responses", None)):
            try:
                stream and stream.close()
            except OSError:
                pass
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
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
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the notebook's process stopped answering"
        tail = bytes(self.output[-3000:]).decode("utf-8", "replace")
        if code and not self._ready_seen and "sandbox: " in tail:
            line = [l for l in tail.splitlines() if l.startswith("sandbox: ")][-1]
            return f"grader error: could not set up the sandbox ({line[9:200]})"
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

    def _read(self, call_deadline=None):
        deadline = self.deadline if call_deadline is None else min(self.deadline, call_deadline)

        def timed_out():
            if deadline < self.deadline:
                return SandboxFailure(f"a call into the notebook did not return within "
                                      f"{self.limits.call_timeout_s:g} s")
            return SandboxFailure(f"timeout after {self.limits.timeout_s:g} s")

        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([self._responses], [], [], remaining)[0]:
            raise timed_out()
        try:
            return wire.read_message(_DeadlineReader(self._responses, deadline))
        except TimeoutError:
            raise timed_out() from None
        except EOFError:
            raise SandboxFailure(self._death_status()) from None
        except (wire.WireError, ValueError) as error:
            raise SandboxFailure(f"the notebook's process sent garbage ({error})") from None

    def wait_ready(self) -> dict:
        message = self._read()
        self._ready_seen = True
        if message.get("event") == "failed":
            raise SandboxFailure(f"could not run the notebook: {message.get('error')}")
        if message.get("event") != "ready":
            raise SandboxFailure("the notebook's process broke the grading protocol")
        return message

    def request(self, message: dict) -> dict:
        nonce = secrets.token_hex(16)  # unguessable: replies cannot be forged ahead of time
        message = dict(message, nonce=nonce)
        try:
            wire.write_message(self._requests, message)
        except (BrokenPipeError, OSError):
            raise SandboxFailure(self._death_status()) from None
        call_deadline = time.monotonic() + self.limits.call_timeout_s
        while True:
            reply = self._read(call_deadline)
            if reply.get("nonce") == nonce:
                return reply

    def output_text(self) -> str:
        text = bytes(self.output).decode("utf-8", "replace")
        if self.output_dropped:
            text += f"\n[... {self.output_dropped} more bytes of output dropped]"
        return text
