"""What a sandboxed notebook may use, whether namespaces can isolate it here, and how it failed.

`Limits` holds the time, memory, output, file and process limits of one submission;
`isolation_available` probes once whether unprivileged namespaces work on this machine;
`FailureKind` is the typed reason a notebook's process stopped (the judge branches on it), and
`OUT_OF_MEMORY_WORDS` is the one list of words that mean a process ran out of memory.
"""
import enum
import os
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Limits:
    """The limits of one submission; the command line's defaults come from course.toml."""

    timeout_s: float = 300.0  # the whole submission: running the notebook and every test
    memory_mb: int = 4096
    output_bytes: int = 1_000_000
    file_mb: int = 256
    call_timeout_s: float = 60.0  # one call into a graded function
    processes: int = 256  # processes and threads of one notebook (applied when grading as root)

    def resource_limits(self, gpu: bool, uid) -> dict:
        """The rlimits of a notebook's process, by `resource` name. `gpu`: CUDA reserves huge
        virtual ranges, so there the address-space cap is not applied; `uid`: the notebook's own
        uid when the grader is root (the process limit counts that uid's processes; root is exempt)."""
        limits = {"RLIMIT_CORE": 0, "RLIMIT_FSIZE": self.file_mb * 1024 * 1024}
        if not gpu:
            limits["RLIMIT_AS"] = self.memory_mb * 1024 * 1024
        if uid is not None:
            limits["RLIMIT_NPROC"] = self.processes
        return limits


class FailureKind(enum.Enum):
    """Why a notebook's process stopped answering the grader."""

    TIMEOUT = "timeout"  # the submission's whole time limit ran out
    CALL_TIMEOUT = "call timeout"  # one call into the notebook overran `Limits.call_timeout_s`
    MEMORY = "memory"  # killed at the memory limit
    CRASH = "crash"  # died with a signal
    EXITED = "exited"  # the notebook left the interpreter itself
    UNRESPONSIVE = "unresponsive"  # stopped answering without ending
    NOTEBOOK_FAILED = "notebook failed"  # the worker could not run the notebook at all
    PROTOCOL = "protocol"  # garbage or messages out of order on the channel
    SANDBOX_SETUP = "sandbox setup"  # the grader could not build the sandbox (no notebook code ran)


# Words in a process's output or an error message that mean it ran out of memory: Python's own
# error, the C library's errno text, C++ allocation failures and torch's CPU and CUDA allocators.
OUT_OF_MEMORY_WORDS = ("MemoryError", "Cannot allocate memory", "can't allocate memory", "std::bad_alloc",
                       "DefaultCPUAllocator: can't allocate", "out of memory")


def mentions_out_of_memory(text: str) -> bool:
    """Whether `text` (an error message or a process's last output) says memory ran out."""
    return any(word in text for word in OUT_OF_MEMORY_WORDS)


def killed_for_memory(exit_code: int, output_tail: str) -> bool:
    """Whether a process that ended with `exit_code` after printing `output_tail` hit the memory
    limit: it said so, or it was killed (SIGKILL, or a shell's 137) while allocating."""
    return mentions_out_of_memory(output_tail) or exit_code in (-signal.SIGKILL, 137) and "alloc" in output_tail


def grading_as_root() -> bool:
    """Whether the grader runs as root (then notebooks run as fresh unprivileged uids)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def user_namespace_flags() -> list:
    """The `unshare` flags for the user namespace: none for a grader that is root (the notebook
    then runs as an unused, unprivileged uid; with root's uid it would own, and read, root's files
    in /etc and /usr). Anyone else maps their own uid to root inside a new user namespace."""
    return [] if grading_as_root() else ["--user", "--map-root-user"]


def sandbox_uid():
    """The uid a notebook runs as when the grader is root: one no account uses, fresh per sandbox,
    so that the process limit counts this sandbox's processes only. None when not root."""
    return 2_000_000 + secrets.randbelow(1_000_000) if grading_as_root() else None


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
                    ["unshare", *user_namespace_flags(), "--mount", "--pid", "--fork", "--net", "--ipc",
                     "true"], capture_output=True, timeout=20).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            _ISOLATION = bool(ok)
    return _ISOLATION
