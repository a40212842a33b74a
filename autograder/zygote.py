"""A warm parent for sandboxed notebook processes: import torch once, fork per submission.

Starting a sandboxed worker from scratch costs seconds of CPU before the first cell runs
(Python, torch, IPython, matplotlib). The zygote imports them once and, for each submission,
forks a child that builds a fresh sandbox around itself (new user, mount, PID, network and IPC
namespaces, a whitelist root, every capability dropped, rlimits) and then runs `worker.main`.

Nothing crosses between submissions: the zygote never runs student code, each child is a
copy-on-write image of the zygote taken before any notebook ran, and each child lives in its
own namespaces. Like `worker.py`, this file runs with the public library only: it is copied
into a staging folder next to `worker.py` and `wire.py` and imports nothing private. The
grader's side (starting the zygote, asking it for children) is `zygote_client.py`.

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

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 4, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SETUP_FAILED = 121
PUBLIC_PACKAGES = ("autograder", "worker", "wire", "zygote", "otter")  # the staged library's modules
# torch._dynamo: torch imports it on the first use of a dispatch mode (every op count), which takes
# about 2 s; imported once here, no graded submission pays for it.
PRELOAD = ["torch", "torch._dynamo", "numpy", "IPython.core.interactiveshell", "matplotlib.pyplot",
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


def _drop_bounding_set():
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability this kernel knows


def _drop_capabilities():
    _drop_bounding_set()
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

    Three processes: this one (in the zygote's PID namespace, waits and reports), a trusted
    PID 1 of the new namespace (builds the root, keeps its capabilities so the notebook cannot
    ptrace it, never runs notebook code, and takes every process of the namespace with it when
    it dies), and the notebook's process, PID 2, which drops every capability. Returns in the
    notebook's process only. A notebook that leaves the process group or clears its parent-death
    signal still dies with PID 1, which it cannot signal, move or trace.
    """
    uid, gid = os.getuid(), os.getgid()
    run_as = request.get("uid")  # set when the grader is root: no user namespace, an unused uid
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC
    _check(_libc.unshare(flags if run_as is not None else flags | CLONE_NEWUSER), "unshare")
    if run_as is None:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1\n")
        _write("/proc/self/gid_map", f"0 {gid} 1\n")
    status_r, status_w = os.pipe()
    init = os.fork()
    if init:  # outside: report the notebook's status as our own
        os.close(status_w)
        os.closerange(0, 5)  # only the notebook's process holds the pipes
        _, init_status = os.waitpid(init, 0)
        reported = os.read(status_r, 64).strip()
        _exit_like(int(reported) if reported.lstrip(b"-").isdigit() else init_status)
    os.close(status_r)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    subprocess.run(["sh", "-c", request["mount_script"], "sandbox"], check=True,
                   stdin=subprocess.DEVNULL, close_fds=True)
    os.chdir(request["workdir"])
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # PID 1 ignores every signal it has no handler for
    notebook = os.fork()
    if notebook:  # PID 1: reap everything, leave when the notebook's process ends
        os.closerange(0, 5)
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                os._exit(SETUP_FAILED)
            if pid == notebook:
                os.write(status_w, str(status).encode())
                os._exit(0)
    os.close(status_w)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if run_as is not None:
        _become_user(int(run_as))
    _drop_capabilities()
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def _become_user(uid):
    """From root to `uid`, no groups: the bounding set first (that needs root), then the ids;
    leaving uid 0 for good clears the permitted and effective capabilities."""
    _drop_bounding_set()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def _exit_like(status):
    """Leave with the same exit code or signal as a child's wait status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        os.kill(os.getpid(), sig)
        os.kill(os.getpid(), signal.SIGKILL)  # a signal whose default is not to die
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else SETUP_FAILED)


def _child(request, fds):
    """Runs in the forked child; never returns."""
    try:
        os.setsid()
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != request["zygote_pid"]:  # the zygote died while we started
            os._exit(SETUP_FAILED)
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
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGCHLD):
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
        import numpy
        numpy.random.seed()
    except BaseException as error:  # noqa: BLE001 - report in words, then leave
        try:
            os.write(2, f"sandbox: {type(error).__name__}: {error}\n".encode())
        finally:
            os._exit(SETUP_FAILED)
    code = 0
    try:
        import worker
        worker.main()
    except SystemExit as stop:  # as CPython does at the end of a script
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - print any failure, then leave with code 1
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


def serve(address, extra=()):
    """Import the heavy modules once (PRELOAD, then the `extra` modules the assignment's notebook
    imports), then fork a fresh child for each submission asked for at `address`."""
    import importlib
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the grader's end is ours too
    for module in PRELOAD:
        importlib.import_module(module)
    for module in extra:
        if module.split(".")[0] in PUBLIC_PACKAGES:
            continue  # the staged library: imported by the notebook, fresh, as in any other grading
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - not installed or broken here: the notebook meets it as usual
            pass
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
                _start_child(listener, children, clients)
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


def _start_child(listener, children, clients):
    """Accept one request and fork its child; a bad or silent client only loses its own request."""
    try:
        connection, _ = listener.accept()
    except OSError:
        return
    fds = []
    try:
        connection.settimeout(10)
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        request = json.loads(message)
        if len(fds) != 3 or not isinstance(request, dict):
            raise ValueError("expected a request and three file descriptors")
        request["zygote_pid"] = os.getpid()
        sys.stdout.flush()
        pid = os.fork()
    except (OSError, ValueError) as error:
        _send(connection, {"error": str(error)})
        connection.close()
        for fd in fds:
            os.close(fd)
        return
    if pid == 0:
        try:
            listener.close()
            children.clear()
            _child(request, fds)
        finally:
            os._exit(SETUP_FAILED)
    for fd in fds:
        os.close(fd)
    connection.settimeout(None)
    _send(connection, {"pid": pid})
    children[pid] = connection
    clients.add(connection)


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
    serve(sys.argv[1], sys.argv[2:])
    sys.stdout.flush()
    os._exit(0)  # its children are killed: skip tearing down torch (seconds the grader would wait for)
