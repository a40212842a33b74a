"""Tests that need a CUDA GPU (`make gpu-check` runs them with `pytest -m cuda`); skipped, and
listed as skipped, on a machine without one."""
import json
import os
import subprocess
import sys

import pytest
import torch

from autograder.assignments import ROOT
from tests.conftest import selected_assignments

ASSIGNMENT = "ssm_forward_gpu"
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_every_cuda_only_check_runs_and_passes_on_the_gpu(soundness_results, tmp_path):
    """The reference, graded with the GPU hidden, reports the CUDA-only checks as not run; graded on
    the GPU, those same checks run and pass (policy 'exclude' would otherwise hide a broken one)."""
    if ASSIGNMENT not in {spec.id for spec in selected_assignments()}:
        pytest.skip(f"{ASSIGNMENT} is not among SEQMOD_ASSIGNMENTS")
    on_gpu = soundness_results[ASSIGNMENT]["reference"]
    out = tmp_path / "without_gpu"
    command = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(ROOT / "solutions" / f"{ASSIGNMENT}.ipynb"),
               "--out", str(out), "--gpu-policy", "exclude", "--quiet"]
    done = subprocess.run(command, cwd=ROOT, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [without_gpu] = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
    cuda_only = set(without_gpu["skipped"])
    assert without_gpu["device"] == "cpu" and cuda_only, "with the GPU hidden, the CUDA-only checks should not run"

    cases = {case["name"]: case for q in on_gpu["questions"].values() for case in q["cases"]}
    assert on_gpu["device"] == "cuda" and not on_gpu["skipped"], on_gpu["skipped"]
    failed = {name: cases[name]["message"] for name in sorted(cuda_only) if not cases[name]["passed"]}
    assert not failed, failed
    assert on_gpu["total"] == on_gpu["possible"], on_gpu["status"]
