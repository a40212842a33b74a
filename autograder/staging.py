"""What a sandbox holds, and the script that mounts it.

A sandbox's scratch folder holds the submission (`in/`), the notebook's working folder
(`work/`, a tmpfs inside the sandbox) and the public library (`lib/`): `worker.py`, `wire.py`
and `zygote.py` on their own, the generic modules of the checks library, and a stand-in for
otter (`otter_standin.py`). Nothing else of the grader is copied: the hidden tests, the
references and each assignment's check module stay out of reach.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SANDBOX_MOUNT = "/sandbox"
SYSTEM_DIRS = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"]
# Copied into the library beside each other and imported by plain name (`import wire`):
# each imports nothing of the grader's package.
STANDALONE_MODULES = ("worker.py", "wire.py", "zygote.py")

# What a notebook's process may import from the checks library while it is graded: the
# machinery a graded call runs under (tracing, timing, workloads) and what the notebook's own
# setup and submission cells use. Each assignment's check module is left out: public tests do
# not run there, and those modules compute right answers (to compare with), which a notebook
# must not be able to import as its own.
SANDBOX_CHECKS = ("__init__.py", "core.py", "trace.py", "workloads.py", "notebook.py", "submit.py",
                  "gpu_policy.txt")


def readable_by_all(folder: Path):
    """Make a staged folder readable (and its folders enterable) by a notebook of any uid."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def stage_public_library(lib: Path):
    """Copy what the worker needs into the sandbox, and no more."""
    lib.mkdir(parents=True)
    for name in STANDALONE_MODULES:
        shutil.copy(PACKAGE / name, lib / name)
    (lib / "autograder").mkdir()
    (lib / "autograder" / "__init__.py").write_text('"""Public part of the course autograder."""\n')
    (lib / "autograder" / "checks").mkdir()
    for name in SANDBOX_CHECKS:
        if (PACKAGE / "checks" / name).exists():
            shutil.copy(PACKAGE / "checks" / name, lib / "autograder" / "checks" / name)
    (lib / "otter").mkdir()
    shutil.copy(PACKAGE / "otter_standin.py", lib / "otter" / "__init__.py")


def stage_submission(notebook: Path, isolated: bool) -> Path:
    """A fresh scratch folder for one sandbox: the submission, an empty working folder and the
    public library, all readable by the notebook's uid. Without isolation no tmpfs is mounted
    over `work/`, so the submission is copied there directly."""
    scratch = Path(tempfile.mkdtemp(prefix="seqmod-sandbox-"))
    (scratch / "in").mkdir()
    work = scratch / "work"  # inside the sandbox a tmpfs is mounted here
    work.mkdir()
    shutil.copy(notebook, scratch / "in" / "submission.ipynb")
    if not isolated:
        shutil.copy(notebook, work / "submission.ipynb")
    stage_public_library(scratch / "lib")
    readable_by_all(scratch)
    return scratch


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


def python_dirs() -> list:
    """The folders of the Python installation, the virtual environment and the extra packages,
    which the sandbox mounts read-only. Both spellings of each: a path through a symlink (a
    linked venv or home) stays valid."""
    return sorted({f(p) for p in (sys.prefix, sys.base_prefix) for f in (os.path.abspath, os.path.realpath)}
                  | set(extra_package_dirs()))


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


def mount_script(root: str, scratch: str, python_dirs, gpu: bool, then_exec=True, uid=None) -> str:
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
