"""`make gpu-check` stays wired where there is no GPU: its dry run, the wheel script, the targets.

The GPU run itself needs a GPU machine (README, Instructors); these tests keep it ready for one.
"""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import staging
from autograder.assignments import ROOT
from tools import gpu_check

WHEEL_SCRIPT = ROOT / "tools" / "gpu_wheels.sh"
NO_CUDA_NOTICE = "no CUDA GPU here: dry run only"


def test_dry_run_without_cuda_says_so_once_and_passes():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py")], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert lines[0].startswith(NO_CUDA_NOTICE) and done.stdout.count(NO_CUDA_NOTICE) == 1
    assert "NOT MET" not in done.stdout
    for step in ("packages", "files", "device", "gradings", "ssm benchmark", "ridge benchmark", "notebooks",
                 "cuda tests"):
        assert any(line.startswith(step) and "  met  " in line for line in lines), f"{step} not checked:\n{done.stdout}"


def test_cuda_test_files_match_the_marker():
    """`pytest -m cuda` over the whole suite selects tests in CUDA_TEST_FILES only (the GPU run
    names those files), and some in each of them."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "--collect-only", "-q", "-p",
                           "no:cacheprovider", "-o", "addopts="], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, SEQMOD_ASSIGNMENTS="ssm_forward_gpu"))
    assert done.returncode == 0, done.stdout[-3000:]
    files = {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}
    assert files == set(gpu_check.CUDA_TEST_FILES), files


# -- the wheel script ------------------------------------------------------------------------------
def fake_wheels(folder: Path, names):
    """Files named like wheels (verify reads names and sizes, not contents) and their PINS.txt."""
    folder.mkdir()
    pins = []
    for name in names:
        with zipfile.ZipFile(folder / name, "w") as archive:
            archive.writestr("placeholder", "x")
        pins.append("==".join(name.split("-")[:2]))
    (folder / "PINS.txt").write_text("\n".join(pins) + "\n")
    return folder


def verify(folder, **env):
    return subprocess.run(["bash", str(WHEEL_SCRIPT), "--verify"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, GPU_WHEELS=str(folder), PYTHON=sys.executable, **env))


GOOD = ["nbformat-5.11.1-py3-none-any.whl",
        "pyzmq-27.3.0-cp312-abi3-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl",
        "rpds_py-2026.9.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]


def test_wheel_verify_accepts_wheels_for_the_gpu_machine(tmp_path):
    done = verify(fake_wheels(tmp_path / "w", GOOD))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 wheels" in done.stdout


@pytest.mark.parametrize("bad,problem", [
    ("numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl", "not for CPython 3.12"),
    ("numpy-2.4.6-cp312-cp312-macosx_14_0_arm64.whl", "not for x86-64 Linux"),
    ("nbformat-5.10.0-py3-none-any.whl", "several versions"),
])
def test_wheel_verify_refuses_wheels_the_gpu_machine_cannot_use(tmp_path, bad, problem):
    done = verify(fake_wheels(tmp_path / "w", GOOD + [bad]))
    assert done.returncode == 1 and problem in done.stdout, done.stdout + done.stderr


def test_wheel_verify_enforces_the_size_limit_and_the_pins(tmp_path):
    folder = fake_wheels(tmp_path / "w", GOOD)
    done = verify(folder, GPU_WHEELS_LIMIT_MB="0")
    assert done.returncode == 1 and "over the limit" in done.stdout
    (folder / GOOD[0]).unlink()
    done = verify(folder)
    assert done.returncode == 1 and "missing ['nbformat']" in done.stdout
    assert verify(tmp_path / "absent").returncode == 1


def test_wheel_folder_when_present_is_valid():
    folder = ROOT / "tools" / "gpu_wheels"
    if not folder.is_dir():
        pytest.skip("tools/gpu_wheels/ not fetched here (tools/gpu_wheels.sh)")
    done = verify(folder)
    assert done.returncode == 0, done.stdout + done.stderr


def test_wheel_resolution_needs_no_torch_and_brings_the_notebook_stack():
    """Resolves against the package index (no wheel downloaded): opt in with SEQMOD_NETWORK_TESTS=1."""
    if os.environ.get("SEQMOD_NETWORK_TESTS") != "1":
        pytest.skip("needs the package index: set SEQMOD_NETWORK_TESTS=1")
    done = subprocess.run(["bash", str(WHEEL_SCRIPT), "--resolve"], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 0, done.stderr[-3000:]
    names = {line.split("==")[0] for line in done.stdout.split()}
    assert {"otter-grader", "nbformat", "nbclient", "ipykernel", "ipython", "jupyter-client", "nbgrader"} <= names
    assert not names & {"torch", "numpy", "pandas", "matplotlib", "pytest", "playwright"}, names


# -- targets: measurements in, rows out -----------------------------------------------------------------
def ssm_record(unrolled_ms, full_ms, depthwise_ms, fft_ms, bw_ms, agree=1e-6):
    ms = {"unrolled": unrolled_ms, "full conv": full_ms, "depthwise": depthwise_ms, "FFT": fft_ms, "scan": 1.0}
    return {"cuda": True, "rows": [{"H": 16, "T": 64, "bw_ms": 0.01, "agree": agree, "ms": dict(ms)},
                                   {"H": 16, "T": 4096, "bw_ms": bw_ms, "agree": agree, "ms": ms}]}


def test_ssm_targets_follow_the_measurements():
    met = gpu_check.ssm_rows(ssm_record(unrolled_ms=100.0, full_ms=4.0, depthwise_ms=0.3, fft_ms=0.5, bw_ms=0.2))
    assert [r.met for r in met] == [True, True, True, True], met
    missed = gpu_check.ssm_rows(ssm_record(unrolled_ms=30.0, full_ms=4.0, depthwise_ms=1.0, fft_ms=0.7, bw_ms=0.2,
                                           agree=1e-2))
    assert [r.met for r in missed] == [False, False, False, False], missed
    assert missed[0].measured.startswith("7.5x")


def test_ssm_targets_not_measured_when_the_length_was_skipped():
    record = ssm_record(100.0, None, 0.3, 0.5, 0.2)
    record["rows"] = record["rows"][:1]
    rows = gpu_check.ssm_rows(record)
    assert rows[0].met is None and rows[0].measured == "not measured"


def test_ridge_targets_follow_the_measurements():
    rows = [{"d": 16, "n": 2048, "err": 1e-5, "ms": {"recursion": 60.0, "chunked": 6.0}},
            {"d": 64, "n": 2048, "err": 2e-3, "ms": {"recursion": 60.0, "chunked": 20.0}}]
    result = gpu_check.ridge_rows({"rows": rows})
    assert [r.met for r in result] == [True, False, False]


def grading(total, possible, skipped=(), failed_case=None):
    cases = [{"name": "test_a", "passed": True}]
    if failed_case:
        cases.append({"name": failed_case, "passed": False, "message": "slower than expected"})
    return {"total": total, "possible": possible, "skipped": list(skipped), "status": "Completed", "seconds": 9.0,
            "questions": {"q1": {"cases": cases}}}


def test_repeated_gradings_count_full_marks_and_name_the_flaky_test():
    results = [grading(42, 42)] * 19 + [grading(40, 42, failed_case="test_conv_beats_unrolled_on_cuda")]
    [count, times] = gpu_check.grading_rows(results, 20, 60.0, 0)
    assert count.met is False and count.measured.startswith("19/20 full marks")
    assert "test_conv_beats_unrolled_on_cuda failed 1x: slower than expected" in count.measured
    assert times.measured == "9.0, 9.0"
    [count, _] = gpu_check.grading_rows([grading(42, 42)] * 3 + [grading(29, 29, skipped=["t"])], 4, 1.0, 0)
    assert count.met is False and count.measured.startswith("3/4"), "a skipped CUDA test is not full marks"
    [count] = gpu_check.grading_rows([], 20, 150.0, None, "log tail")
    assert count.met is False and "(timed out)" in count.measured


def test_summary_marks_every_row_and_keeps_details():
    rows = [gpu_check.Row("a", "t1", "1.0x", True), gpu_check.Row("b", "t2", "first\n      detail", False),
            gpu_check.Row("c", "t3", "not measured", None)]
    table = gpu_check.summary(rows, "title").splitlines()
    assert table[0] == "title" and table[-1] == "1/2 met"
    assert "met" in table[3] and "NOT MET" in table[4] and table[5] == "      detail" and " - " in table[6]


# -- the sandbox sees packages installed with --target ----------------------------------------------------
def test_sandbox_site_folders_are_mounted_and_on_the_import_path(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setenv("SEQMOD_SANDBOX_SITE", str(site))
    assert staging.extra_package_dirs() == [str(site.resolve())]
    assert staging.worker_environment("/lib", "/home")["PYTHONPATH"].split(os.pathsep) == ["/lib", str(site.resolve())]


@pytest.mark.parametrize("folder", ["relative/site", str(ROOT), str(ROOT.parent), "/no/such/folder"])
def test_sandbox_site_refuses_the_grader_and_bad_paths(monkeypatch, folder):
    monkeypatch.setenv("SEQMOD_SANDBOX_SITE", folder)
    with pytest.raises(ValueError, match="SEQMOD_SANDBOX_SITE"):
        staging.extra_package_dirs()
