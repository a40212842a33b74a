"""A TA's batch survives anything a notebook does, and no notebook can talk its way to points.

One batch of real notebooks, built from the CPU SSM assignment, graded through the real sandbox:
faults must each get their row with a truthful status; cheats must score no more than a blank
notebook; honest rows in the same batch are unaffected.
"""
import os
import subprocess
import zipfile

import nbformat
import pytest

from autograder.assignments import ROOT
from autograder.grade import grade_all
from autograder.limits import Limits, grading_as_root, isolation_available
from tests import budgets, notebooks

ASSIGNMENT = "ssm_forward_cpu"
HIDDEN_CHECKS = ROOT / "autograder" / "hidden" / f"{ASSIGNMENT}.py"
MASTER = ROOT / "solutions" / f"{ASSIGNMENT}.ipynb"
BLANK = ROOT / "notebooks" / f"{ASSIGNMENT}.ipynb"


def blank_with(*cells):
    return notebooks.append_cells(nbformat.read(BLANK, as_version=4), *cells)


def reference_with(*cells, at=None):
    return notebooks.append_cells(notebooks.reference_notebook(ASSIGNMENT), *cells, at=at)


def exec_solutions_from(path):
    """Cell source that tries to read the reference solution from `path` and run it."""
    return f'''
import json
try:
    _nb = json.load(open({str(path)!r}))
    for _cell in _nb["cells"]:
        _src = "".join(_cell["source"])
        if _cell["cell_type"] == "code" and "def " in _src and "BEGIN TEST CONFIG" not in _src:
            exec(_src, globals())
    print("read the solutions")
except Exception as error:
    print("could not read the solutions:", error)
'''


LYING_TENSOR = '''
import torch
class Agreeable(torch.Tensor):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func.__name__ in ("allclose", "equal", "isclose", "all", "any"):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})
def _agree(*args, **kwargs):
    return torch.zeros(1).as_subclass(Agreeable)
ssm_kernel = unrolled_ssm_forward = make_conv_kernel = conv_ssm_forward = _agree
'''

PATCH_COMPARISONS = '''
import numpy, torch
numpy.allclose = numpy.array_equal = lambda *a, **k: True
torch.allclose = torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
import builtins
builtins.AssertionError = type("Nothing", (Exception,), {})
'''

PATCH_OTTER = '''
import otter
try:
    import otter.test_files.abstract_test as at
    at.TestFile.grade = property(lambda self: 1.0)
    at.TestFile.all_or_nothing = False
except Exception as error:
    print("no otter internals here:", error)
otter.Notebook.check = lambda self, *a, **k: print("All tests passed!")
class _Everything:
    def __getattr__(self, name): return lambda *a, **k: 19
import sys
sys.modules["autograder.hidden"] = _Everything()
sys.modules["autograder.references"] = _Everything()
'''

OVERWRITE_GRADER = f'''
for _path in [{str(HIDDEN_CHECKS)!r}, "autograder/hidden/{ASSIGNMENT}.py", "../autograder/hidden/{ASSIGNMENT}.py"]:
    try:
        with open(_path, "w") as f:
            f.write("def __getattr__(name):\\n    return lambda *a, **k: None\\n")
        print("overwrote", _path)
    except Exception as error:
        print("could not write", _path, error)
'''

FORGE_REPLIES = '''
import json, os, struct
def _send(fd, message):
    data = json.dumps(message).encode()
    try:
        os.write(fd, struct.pack(">Q", len(data)) + data)
    except OSError:
        pass
for _fd in range(3, 64):
    _send(_fd, {"event": "ready", "cell_errors": [], "cells": 1})
    for _nonce in range(1, 40):
        _send(_fd, {"nonce": _nonce, "status": "ok", "names": {}, "value": None})
'''

NETWORK = '''
import urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:9", timeout=3)
    print("NETWORK: reachable")
except Exception as error:
    print("NETWORK: unreachable", type(error).__name__)
'''


# What a notebook's escaping child runs: unique to this test run (the pid), so that a second suite
# on the same machine, with its own escaping child alive, cannot fail (or pass) this one's check.
ESCAPED_SLEEP = f"1234.{os.getpid()}"
HANG_ON_T1 = """
_honest_unrolled = unrolled_ssm_forward
def unrolled_ssm_forward(W, U, b, x):
    if x.shape[1] == 1:  # only the tests use T = 1
        while True:
            pass
    return _honest_unrolled(W, U, b, x)
"""


STALL_THE_REQUEST_PIPE = """
import fcntl, os, sys, time
import wire
fcntl.fcntl(3, 1031, 4096)  # F_SETPIPE_SZ: the grader's next request no longer fits
_honest_conv = conv_ssm_forward
def conv_ssm_forward(W, U, b, x):
    out = _honest_conv(W, U, b, x)
    frame = sys._getframe(1)
    while frame is not None and "message" not in frame.f_locals:
        frame = frame.f_back
    message = frame.f_locals["message"] if frame is not None else {}
    if message.get("op") == "traced" and x.shape[1] == 40:
        wire.write_message(os.fdopen(os.dup(4), "wb", buffering=0),
                           {"nonce": message["nonce"], "status": "ok", "value": wire.encode(out),
                            "counts": {"ops": {"convolution": 1}, "largest_output": 0}}, message["nonce"])
        time.sleep(10 ** 6)  # and never read another request
    return out
"""

FORGED_READY = """
import os, wire
wire.write_message(os.fdopen(os.dup(4), "wb", buffering=0),
                   {"event": "ready", "cell_errors": [{"cell": "x", "error": 3}, {"cell": 0}], "cells": "many"})
"""

GARBAGE_FRAME = """
import os, struct
_junk = b"[" * 200000 + b"]" * 200000
os.write(4, struct.pack(">Q", len(_junk)) + b" " * 32 + _junk)
"""

DEEP_DIRECTORIES = """
import os
_top = os.getcwd()
os.mkdir("deep"); os.chdir("deep")
for _ in range(3000):
    os.mkdir("d"); os.chdir("d")
os.chdir(_top)
"""

BLAME_THE_SANDBOX = 'print("sandbox: cannot make /usr read-only")\nimport os\nos._exit(1)'

FLOOD_THE_JUDGE = """
import os, wire
def unrolled_ssm_forward(W, U, b, x):
    junk = {"junk": "x" * (64 * 1024 * 1024)}
    wire.write_message(os.fdopen(os.dup(4), "wb", buffering=0), junk)  # tagged for nobody
    return None
"""

READ_ROOT_FILES = """
try:
    open("/etc/shadow").read()
    print("SHADOW readable")
except Exception as error:
    print("SHADOW", type(error).__name__)
"""

MANY_PROCESSES = """
import subprocess
_children = []
try:
    for _ in range(2000):
        _children.append(subprocess.Popen(["sleep", "60"]))
except OSError as error:
    print("PROCESSES stopped:", type(error).__name__)
print("PROCESSES", len(_children))
for _child in _children:
    _child.kill()
    _child.wait()
"""


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adversarial")
    subs = folder / "submissions"
    classmate = folder / "classmate" / "honest.ipynb"
    notebooks.write(notebooks.reference_notebook(ASSIGNMENT), classmate)
    entries = {
        # honest rows
        "honest": notebooks.reference_notebook(ASSIGNMENT),
        "blank": nbformat.read(BLANK, as_version=4),
        # faults
        "an_endless_loop": reference_with("while True:\n    pass"),  # sorted first: it holds a worker longest
        "exits_interpreter": reference_with("import os\nos._exit(3)"),
        "segfault": reference_with("import ctypes\nctypes.string_at(0)"),
        "exhausts_memory": reference_with("hog = bytearray(64 * 1024 ** 3)"),
        "prints_a_lot": reference_with(
            "import sys\nline = 'x' * 1000 + '\\n'\nfor _ in range(20_000):\n    sys.stdout.write(line)"),
        "raises_at_top_level": reference_with("raise ValueError('student bug at top level')"),
        "calls_sys_exit": reference_with("import sys\nsys.exit(0)"),
        "hangs_inside_function": reference_with(HANG_ON_T1),
        "crashes_inside_function": reference_with(
            HANG_ON_T1.replace("while True:\n            pass", "import ctypes\n        ctypes.string_at(0)")),
        "leaves_processes_behind": reference_with(
            "import subprocess\nsubprocess.Popen(['sleep', '" + ESCAPED_SLEEP + "'], start_new_session=True)"),
        "escapes_group_and_parent_death": reference_with(  # then hangs in a test and is killed
            "import ctypes, os, subprocess\nos.setsid()\nctypes.CDLL(None).prctl(1, 0, 0, 0, 0)\n"
            "subprocess.Popen(['sleep', '" + ESCAPED_SLEEP + "'], start_new_session=True)\n" + HANG_ON_T1),
        "killed_by_cpu_limit": reference_with(  # SIGKILL from the kernel, even for PID 1
            "import resource, signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_CPU, (1, 2))\nwhile True:\n    pass"),
        # cheats (all on top of the blank notebook: no honest work)
        "cheat_patch_comparisons": blank_with(PATCH_COMPARISONS),
        "cheat_patch_otter": blank_with(PATCH_OTTER),
        "cheat_lying_tensor": blank_with(LYING_TENSOR),
        "cheat_read_solutions": blank_with(exec_solutions_from(MASTER)),
        "cheat_read_classmate": blank_with(exec_solutions_from(classmate)),
        "cheat_overwrite_grader": blank_with(OVERWRITE_GRADER),
        "cheat_forge_replies": blank_with(FORGE_REPLIES),
        "cheat_network": blank_with(NETWORK),
        "cheat_flood_the_judge": blank_with(FLOOD_THE_JUDGE),
        # attacks on the grading protocol and the sandbox's own limits
        "stalls_the_request_pipe": reference_with(STALL_THE_REQUEST_PIPE),
        "forges_a_ready_message": reference_with(FORGED_READY),
        "sends_garbage": reference_with(GARBAGE_FRAME),
        "deep_directories": reference_with(DEEP_DIRECTORIES),
        "blames_the_sandbox": reference_with(BLAME_THE_SANDBOX),
        "reads_root_files": reference_with(READ_ROOT_FILES),
    }
    if grading_as_root():  # the process limit applies to the unprivileged uid a root grader uses
        entries["many_processes"] = reference_with(MANY_PROCESSES)
    for name, nb in entries.items():
        notebooks.write(nb, subs / f"{name}.ipynb")
    odd_kernel = notebooks.reference_notebook(ASSIGNMENT)
    odd_kernel.metadata["kernelspec"] = {"name": "my-conda-env-2", "display_name": "Mine", "language": "python"}
    notebooks.write(odd_kernel, subs / "unusual_kernel_name.ipynb")
    (subs / "corrupt.ipynb").write_bytes(b"\x89PNG\r\n not json at all")
    (subs / "empty.ipynb").write_bytes(b"")
    with zipfile.ZipFile(subs / "otter_export.zip", "w") as archive:
        archive.write(subs / "honest.ipynb", "ssm_forward_cpu.ipynb")
        archive.writestr(".OTTER_LOG", "log")
    with zipfile.ZipFile(subs / "zip_without_notebook.zip", "w") as archive:
        archive.writestr("readme.txt", "oops")
    (subs / "corrupt.zip").write_bytes(b"PK\x03\x04 truncated")
    hidden_before = HIDDEN_CHECKS.read_bytes()
    # Budgets that suffice on an idle machine, scaled by the load measured now: rows that must
    # complete never race the clock (an honest row takes 1.5 to 5 s on an idle machine, 12 s beside
    # the rest of the suite; its slowest call under 1.3 s); the rows that must time out never end anyway.
    scale = budgets.scale()
    limits = Limits(timeout_s=budgets.budget(30, scale), memory_mb=3072, call_timeout_s=budgets.budget(5, scale))
    results = grade_all(ASSIGNMENT, [subs], folder / "out", workers=2, limits=limits, force=True)
    return {"results": {r["file"]: r for r in results}, "count": len(list(subs.iterdir())),
            "out": folder / "out", "hidden_before": hidden_before, "limits": limits}


def row(batch, name):
    return batch["results"][name]


def full(result):
    return result["total"] == result["possible"] > 0


def test_one_row_per_input(batch):
    lines = (batch["out"] / "grades.csv").read_text().strip().splitlines()
    assert lines[0].startswith("file,q1,q2,q3,q4,q9,total_points_earned,percent_correct,grading_status")
    assert lines[1].startswith("points-per-question,")
    assert len(lines) - 2 == batch["count"] == len(batch["results"])
    assert len(list((batch["out"] / "feedback").glob("*.md"))) == batch["count"]


def test_honest_rows_are_unaffected(batch):
    for name in ("honest", "unusual_kernel_name.ipynb", "otter_export.zip"):
        result = row(batch, name if "." in name else f"{name}.ipynb")
        assert full(result), (name, result["status"])
        assert result["status"] == "Completed"
    assert row(batch, "blank.ipynb")["total"] == 0


@pytest.mark.parametrize("name,status", [
    ("an_endless_loop", "timeout after {timeout:g} s"),
    ("blames_the_sandbox", "the notebook exited the interpreter (exit code 1)"),
    ("sends_garbage", "the notebook's process sent garbage"),
    ("exits_interpreter", "the notebook exited the interpreter (exit code 3)"),
    ("segfault", "crashed: the notebook's process died with signal SIGSEGV"),
    ("killed_by_cpu_limit", "crashed: the notebook's process died with signal SIGKILL"),
    ("corrupt.ipynb", "not a notebook"),
    ("empty.ipynb", "not a notebook: the file is empty"),
    ("zip_without_notebook.zip", "no notebook in the zip file"),
    ("corrupt.zip", "not a zip file"),
])
def test_faults_get_a_truthful_status(batch, name, status):
    result = row(batch, name if "." in name else f"{name}.ipynb")
    assert result["status"].startswith(status.format(timeout=batch["limits"].timeout_s)), result["status"]
    assert result["total"] == 0


def test_memory_exhaustion_is_contained_and_reported(batch):
    result = row(batch, "exhausts_memory.ipynb")
    assert "memory limit" in result["status"], result["status"]
    assert full(result), "the graded functions were fine; only a cell ran out of memory"


def test_huge_output_is_capped(batch):
    result = row(batch, "prints_a_lot.ipynb")
    assert "output truncated" in result["status"], result["status"]
    assert full(result)
    assert len(result["output_tail"]) <= 5000


def test_errors_and_exit_at_top_level_do_not_stop_grading(batch):
    for name in ("raises_at_top_level", "calls_sys_exit"):
        result = row(batch, f"{name}.ipynb")
        assert full(result), result["status"]
    assert "1 cell(s) raised errors" in row(batch, "raises_at_top_level.ipynb")["status"]


@pytest.mark.parametrize("name", ["hangs_inside_function", "crashes_inside_function", "escapes_group_and_parent_death"])
def test_a_broken_function_loses_only_its_own_tests(batch, name):
    result = row(batch, f"{name}.ipynb")
    q = result["questions"]
    assert q["q1"]["score"] == q["q1"]["possible"] and q["q3"]["score"] == q["q3"]["possible"]
    assert q["q2"]["score"] == 0
    messages = " ".join(c["message"] for c in q["q2"]["cases"])
    assert "stopped the notebook" in messages


def test_no_process_outlives_its_submission(batch):
    leftovers = subprocess.run(["pgrep", "-f", f"sleep {ESCAPED_SLEEP}"], capture_output=True, text=True).stdout
    if not isolation_available():
        pytest.skip("namespaces unavailable: background processes cannot be contained here")
    assert not leftovers.strip(), "a student's process survived grading"


CHEATS = ["cheat_patch_comparisons", "cheat_patch_otter", "cheat_lying_tensor", "cheat_read_solutions",
          "cheat_read_classmate", "cheat_overwrite_grader", "cheat_forge_replies", "cheat_network",
          "cheat_flood_the_judge"]


@pytest.mark.parametrize("name", CHEATS)
def test_cheats_score_no_more_than_blank(batch, name):
    assert row(batch, f"{name}.ipynb")["total"] <= row(batch, "blank.ipynb")["total"]


def test_the_reading_cheats_would_work_without_the_sandbox():
    """Sanity check for the two tests above: the files they read do exist on the host."""
    assert MASTER.exists() and "def make_conv_kernel" in MASTER.read_text()


def test_grader_files_are_untouched(batch):
    assert HIDDEN_CHECKS.read_bytes() == batch["hidden_before"]


def test_sandbox_has_no_network(batch):
    if not isolation_available():
        pytest.skip("namespaces unavailable")
    assert "NETWORK: unreachable" in row(batch, "cheat_network.ipynb")["output_tail"]


def test_feedback_never_shows_hidden_inputs(batch):
    text = (batch["out"] / "feedback" / "blank.ipynb.md").read_text()
    assert "hidden" in text and "tensor(" not in text


POISON = '''
import os, signal, torch
import autograder.checks.core as core
torch.poisoned = True
torch.allclose = lambda *a, **k: True
core.expect_close = lambda *a, **k: None
for path in ("/tmp/poison", os.path.expanduser("~/poison")):
    open(path, "w").write("x")
import ctypes
shared_memory = ctypes.CDLL(None).shmget(0x5EC0DE, 4096, 0o1600)  # IPC_CREAT | 0600
'''

INSPECT = f'''
import os, torch
import autograder.checks.core as core
inherited = [hasattr(torch, "poisoned"), torch.allclose(torch.zeros(1), torch.ones(1)),
             getattr(core.expect_close, "__name__", ""), os.path.exists("/tmp/poison"),
             os.path.exists(os.path.expanduser("~/poison"))]
with open("/proc/self/status") as status:
    capabilities = sorted(line.split()[1] for line in status if line.startswith(("CapEff", "CapPrm", "CapBnd")))
pid, parent = os.getpid(), os.getppid()
import ctypes
shared_memory_found = ctypes.CDLL(None).shmget(0x5EC0DE, 0, 0) != -1
sees_repository = os.path.exists({str(ROOT / "solutions")!r})
'''


def test_zygote_children_start_clean_and_unprivileged(tmp_path):
    """Notebooks forked from the batch's warm zygote share nothing: what one changes in memory,
    in /tmp, at home or in System V shared memory is not there for the next; each runs under the trusted
    PID 1 of its own namespace with no capabilities and without the host's files."""
    from autograder.sandbox import SandboxedNotebook
    from autograder.zygote_client import ZygoteChild, ZygoteServer
    poison, inspect = tmp_path / "poison.ipynb", tmp_path / "inspect.ipynb"
    notebooks.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(POISON)]), poison)
    notebooks.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(INSPECT)]), inspect)
    limits = Limits(timeout_s=60, memory_mb=3072)
    with ZygoteServer() as zygote:
        with SandboxedNotebook(poison, limits, zygote=zygote.address) as box:
            assert box.wait_ready()["cell_errors"] == []
            assert isinstance(box.process, ZygoteChild), "the zygote did not start"
            made = box.request({"op": "describe", "names": ["shared_memory"]})["names"]["shared_memory"]
            assert made["value"] >= 0, "the poisoning notebook could not create shared memory"
        with SandboxedNotebook(inspect, limits, zygote=zygote.address) as box:
            ready = box.wait_ready()
            assert ready["cell_errors"] == [], ready
            names = box.request({"op": "describe", "names": ["inherited", "capabilities", "pid", "parent",
                                                             "sees_repository", "shared_memory_found"]})["names"]
    values = {name: entry["value"] for name, entry in names.items()}
    assert values["inherited"] == [False, False, "expect_close", False, False]
    if not isolation_available():
        pytest.skip("namespaces unavailable: capabilities, PID 1, the host's files and System V IPC "
                    "cannot be isolated here (memory state was checked)")
    assert values["capabilities"] == ["0000000000000000"] * 3
    assert values["pid"] != 1 and values["parent"] == 1, "PID 1 is the sandbox's own init, never the notebook"
    assert values["sees_repository"] is False
    assert values["shared_memory_found"] is False, "System V IPC is shared between sandboxes"
    import ctypes
    assert ctypes.CDLL(None).shmget(0x5EC0DE, 0, 0) == -1, "the sandbox's shared memory reached the host"


def test_without_a_zygote_each_notebook_starts_a_fresh_interpreter(tmp_path):
    """When the warm zygote cannot start, grading goes on the slow way, with the same verdicts."""
    import subprocess as sp

    from autograder.judge import grade
    from autograder.sandbox import SandboxedNotebook
    from autograder.zygote_client import ZygoteServer
    reference = notebooks.write(notebooks.reference_notebook(ASSIGNMENT), tmp_path / "reference.ipynb")
    limits = Limits(timeout_s=120, memory_mb=3072)
    with ZygoteServer(startup_timeout_s=0) as zygote:  # gives up at once
        with SandboxedNotebook(reference, limits, zygote=zygote.address) as box:
            box.wait_ready()
            assert isinstance(box.process, sp.Popen)
        result = grade(ASSIGNMENT, reference, limits, zygote=zygote.address)
    assert result["status"] == "Completed" and result["total"] == result["possible"] > 0


def test_summary_shows_pass_rates_failures_and_the_slowest(batch):
    summary = (batch["out"] / "summary.md").read_text()
    count = batch["count"]
    assert f"{count} submissions, graded in" in summary
    assert (batch["out"] / "score_histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    honest = row(batch, "honest.ipynb")
    for question, data in honest["questions"].items():
        for case in data["cases"]:
            passed = sum(1 for r in batch["results"].values() for c in r["questions"][question]["cases"]
                         if c["name"] == case["name"] and c["passed"])
            kind = "hidden" if case["hidden"] else "public"
            assert f"| {question} | {case['name']} | {kind} | {passed}/{count} |" in summary
    failures = summary.split("## Submissions that did not complete")[1].split("##")[0]
    timeout = batch["limits"].timeout_s
    assert f"- an_endless_loop.ipynb: timeout after {timeout:g} s" in failures
    assert "- empty.ipynb: not a notebook: the file is empty" in failures
    assert "honest.ipynb" not in failures
    slowest = summary.split("## Slowest submissions")[1].splitlines()[2]
    assert slowest.startswith("- an_endless_loop.ipynb: "), slowest
    assert float(slowest.split(": ")[1].split()[0]) >= timeout, slowest


IMPORT_GRADER_ANSWERS = '''
try:
    from autograder.references.purification import optimal_purifier
    print("borrowed the grader's own purifier")
except ImportError as error:
    print("could not borrow:", error)
'''


def test_grader_references_cannot_be_imported_as_answers(tmp_path):
    """The grader's references compute right answers (public checks hold none: see
    tests/test_public_bundle.py). A notebook graded in the sandbox cannot import them as its own."""
    from autograder.hidden import purification as hidden
    from autograder.references.purification import optimal_purifier
    hidden.purifier_on_fresh_data(optimal_purifier)  # the borrowed function would pass

    blank = nbformat.read(ROOT / "notebooks" / "purification.ipynb", as_version=4)
    subs = tmp_path / "submissions"
    notebooks.write(blank, subs / "blank.ipynb")
    notebooks.write(notebooks.append_cells(nbformat.read(ROOT / "notebooks" / "purification.ipynb", as_version=4),
                                           IMPORT_GRADER_ANSWERS), subs / "borrows.ipynb")
    results = {r["file"]: r for r in grade_all("purification", [subs], tmp_path / "out", workers=2,
                                               limits=Limits(timeout_s=120), force=True)}
    assert results["borrows.ipynb"]["total"] <= results["blank.ipynb"]["total"] == 0
    if not isolation_available():
        pytest.skip("namespaces unavailable: the notebook may see the repository, so the failed "
                    "import is not checked (the score was)")
    assert "could not borrow" in results["borrows.ipynb"]["output_tail"]


def test_the_sandbox_library_holds_no_assignment_checks(tmp_path):
    from autograder import assignments
    from autograder.staging import stage_public_library
    stage_public_library(tmp_path / "lib")
    staged = {p.name for p in (tmp_path / "lib" / "autograder" / "checks").iterdir()}
    assert "core.py" in staged and "trace.py" in staged and "workloads.py" in staged
    for spec in assignments.available():
        assert f"{spec.id}.py" not in staged
    assert "ssm_common.py" not in staged
    for name in staged:  # and nothing staged imports them
        text = (tmp_path / "lib" / "autograder" / "checks" / name).read_text()
        for spec in assignments.available():
            assert f"checks.{spec.id}" not in text and f"from .{spec.id}" not in text, name


def test_a_stalled_request_pipe_cannot_hang_the_batch(batch):
    """The notebook stops reading requests after answering one itself: the grader's write gives
    up at the call budget instead of blocking forever; only the stalled question loses."""
    result = row(batch, "stalls_the_request_pipe.ipynb")
    q = result["questions"]
    assert all(q[name]["score"] == q[name]["possible"] for name in ("q1", "q2", "q3")), result["status"]
    assert q["q4"]["score"] < q["q4"]["possible"]
    said = result["status"] + " ".join(c["message"] for c in q["q4"]["cases"])
    assert f"did not return within {batch['limits'].call_timeout_s:g} s" in said


def test_forged_protocol_messages_change_nothing(batch):
    """A ready message in the wrong shape is cleaned up (no crash in the feedback) and a huge
    message meant for nobody is skipped unread."""
    result = row(batch, "forges_a_ready_message.ipynb")
    assert full(result) and result["status"] == "Completed", result["status"]
    assert (batch["out"] / "feedback" / "forges_a_ready_message.ipynb.md").exists()
    flood = row(batch, "cheat_flood_the_judge.ipynb")
    assert flood["status"].startswith("Completed") and flood["total"] == 0


def test_what_a_notebook_writes_stays_in_the_sandbox(batch):
    """Its working folder is a small tmpfs inside the sandbox: a tree too deep to delete
    recursively costs neither the row nor the grader's disk."""
    result = row(batch, "deep_directories.ipynb")
    assert full(result) and result["status"] == "Completed", result["status"]


def test_a_root_grader_runs_notebooks_unprivileged(batch):
    if not (isolation_available() and grading_as_root()):
        pytest.skip("only a grader running as root maps notebooks to an unprivileged uid")
    assert "SHADOW PermissionError" in row(batch, "reads_root_files.ipynb")["output_tail"]
    many = row(batch, "many_processes.ipynb")
    assert full(many), many["status"]
    assert "PROCESSES stopped: BlockingIOError" in many["output_tail"]
    count = int(many["output_tail"].split("PROCESSES ")[-1].split()[0])
    assert count < Limits.processes
