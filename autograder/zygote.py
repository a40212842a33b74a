"""A warm parent for sandboxed notebook processes: import torch once, fork per submission.

Starting a sandboxed worker from scratch costs seconds of CPU before the first cell runs
(Python, torch, IPython, matplotlib). The zygote imports them once and, for each submission,
forks a child that builds a fresh sandbox around itself (new user, mount, PID and network
namespaces, a whitelist root, every capability dropped, rlimits) and then runs `worker.main`.

Nothing crosses between submissions: the zygote never runs student code, each child is a
copy-on-write image of the zygote taken before any notebook ran, and each child lives in its
own namespaces. Like `worker.py`, this file runs with the public library only: it is copied
into a staging folder next to `worker.py` and `wire.py` and imports nothing private.

Protocol (a SOCK_SEQPACKET Unix socket in a folder only the grader can reach): a client sends
one JSON request with three file descriptors (requests read end, responses write end, output
write end); the zygote answers {"pid": P} and, when that child ends, {"exit": CODE} with
CODE as in `subprocess.Popen.returncode` (negative for a signal). Closing the connection
kills the child.
"""
import ctypes
import fcntl
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SETUP_FAILED = 121
PUBLIC_PACKAGES = ("autograder", "worker", "wire", "zygote", "otter")  # the staged library's modules
PRELOAD = ["torch", "numpy", "nbformat", "IPython.core.interactiveshell", "matplotlib.pyplot",
           "autograder.checks.core", "autograder.checks.trace", "autograder.checks.workloads"]

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


# -- inside a child ------------------------------------------------------------------------------
def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _drop_capabilities():
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability this kernel knows
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _check(_libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status if line.startswith("Cap"))
    if any(int(fields[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb") if k in fields):
        raise OSError("capabilities are still held after dropping them")


def _become_sandboxed(request):
    """In the forked child: enter fresh namespaces, build the root, drop privileges.

    Returns in the process that will run the notebook (PID 1 of the new PID namespace); the
    intermediate process waits for it and exits with its status.
    """
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1\n")
    _write("/proc/self/gid_map", f"0 {gid} 1\n")
    inner = os.fork()
    if inner:
        os.closerange(0, 5)  # only the notebook's process holds the pipes
        _exit_like(os.waitpid(inner, 0)[1])
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    subprocess.run(["sh", "-c", request["mount_script"], "sandbox"], check=True,
                   stdin=subprocess.DEVNULL, close_fds=True)
    os.chdir(request["workdir"])
    _drop_capabilities()


def _exit_like(status):
    """Leave with the same exit code or signal as a child's wait status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else SETUP_FAILED)


def _child(request, fds):
    """Runs in the forked child; never returns."""
    try:
        os.setsid()
        # Out of the way first (a received descriptor may be 3 or 4), then to fixed numbers.
        requests, responses, output = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in fds)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.dup2(requests, 3, inheritable=False)
        os.dup2(responses, 4, inheritable=False)
        os.closerange(5, os.sysconf("SC_OPEN_MAX"))  # the zygote's socket and other clients' pipes
        for name, value in request["rlimits"].items():
            import resource
            resource.setrlimit(getattr(resource, name), (value, value))
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        if request["isolate"]:
            _become_sandboxed(request)
        else:
            os.chdir(request["workdir"])
        os.environ.clear()
        os.environ.update(request["env"], SEQMOD_REQUEST_FD="3", SEQMOD_RESPONSE_FD="4")
        _move_library(request["library"])
        sys.argv = [os.path.join(request["library"], "worker.py"), request["notebook"]]
        random.seed()
    except BaseException as error:  # noqa: BLE001 - report in words, then leave
        os.write(2, f"sandbox: {type(error).__name__}: {error}\n".encode())
        os._exit(SETUP_FAILED)
    code = 0
    try:
        import worker
        worker.main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _move_library(library):
    """Point the preloaded public modules and the import path at the sandbox's own copy."""
    def moved(path):  # the grader starts the zygote with real paths, so strings compare
        if isinstance(path, str) and (path == _STAGE or path.startswith(_STAGE + os.sep)):
            return library + path[len(_STAGE):]
        return path

    sys.path[:] = [library] + [p for p in sys.path if moved(p) == p]
    sys.path_importer_cache.clear()
    for name, module in list(sys.modules.items()):
        if not name.startswith(PUBLIC_PACKAGES):
            continue
        if isinstance(getattr(module, "__path__", None), list):
            module.__path__[:] = [moved(p) for p in module.__path__]
        if isinstance(getattr(module, "__file__", None), str):
            module.__file__ = moved(module.__file__)


# -- the zygote ----------------------------------------------------------------------------------
_STAGE = os.path.dirname(os.path.realpath(__file__))


def serve(address):
    import importlib
    for module in PRELOAD:
        importlib.import_module(module)
    import worker  # noqa: F401 - preloaded with its imports
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    children = {}  # pid -> client connection
    clients = set()
    try:
        while True:
            readable, _, _ = select.select([listener, sys.stdin, *clients], [], [], 0.1)
            for pid, status in _reaped():
                connection = children.pop(pid, None)
                if connection is not None:
                    _send(connection, {"exit": os.waitstatus_to_exitcode(status)})
                    clients.discard(connection)
                    connection.close()
            if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1024):
                return  # the grader has gone: end with it
            if listener in readable:
                connection, _ = listener.accept()
                try:
                    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
                    request = json.loads(message)
                    if len(fds) != 3:
                        raise ValueError("expected three file descriptors")
                except (OSError, ValueError) as error:
                    _send(connection, {"error": str(error)})
                    connection.close()
                    continue
                sys.stdout.flush()
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    _child(request, fds)
                for fd in fds:
                    os.close(fd)
                _send(connection, {"pid": pid})
                children[pid] = connection
                clients.add(connection)
            for connection in [c for c in readable if c in clients]:
                try:
                    said = connection.recv(1024)  # b"kill", or b"" when the client hung up
                except OSError:
                    said = b""
                for pid, owner in list(children.items()):
                    if owner is connection:
                        _kill(pid)  # still our unreaped child: its pid cannot be someone else's
                if not said:
                    clients.discard(connection)
    finally:
        for pid in children:
            _kill(pid)


def _reaped():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def _kill(pid):
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


def _send(connection, message):
    try:
        connection.send(json.dumps(message).encode())
    except OSError:
        pass


if __name__ == "__main__":
    serve(sys.argv[1])
