"""Gradescope's path: otter's own runner (`otter run`, the program Gradescope runs, without Docker)
on our autograder zips gives the course grader's scores, question by question.

The samples, the course grader's results and the kernel come from tests/ingrader.py, which also
says which assignments are compared (one unless FULL=1).
"""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.ingrader import (
    IDS,
    PROCESS_TIMEOUT_S,
    SCRATCH,
    SPECS,
    explain,
    in_kernel_points,
    kernel_env,
    our_results,
    sample_paths,
    shipped_gpu_policy,
    warm_our_results,
)


def run_otter(assignment: str, label: str) -> dict:
    """Otter's results.json for one sample (Gradescope's format), or the reason it has none."""
    out = SCRATCH / "otter" / assignment / label
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(SPECS[assignment].zip_path),
               "-o", str(out), str(sample_paths(assignment)[label])]
    try:
        done = subprocess.run(command, cwd=out, env=kernel_env(), capture_output=True, text=True,
                              timeout=PROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"otter run did not finish in {PROCESS_TIMEOUT_S} s"}
    results = out / "results.json"
    if done.returncode != 0 or not results.exists():
        return {"error": f"otter run exited with {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"}
    return {"results": json.loads(results.read_text()), "stdout": done.stdout[-3000:]}


@pytest.fixture(scope="module")
def otter_runs():
    """Otter on the full and blank sample of every assignment, two processes at a time; the
    course grader grades the same samples meanwhile."""
    jobs = [(assignment, label) for assignment in IDS for label in ("full", "blank")]
    with ThreadPoolExecutor(max_workers=1) as ours_pool, ThreadPoolExecutor(max_workers=2) as otter_pool:
        ours_pool.submit(warm_our_results, IDS)
        runs = dict(zip(jobs, otter_pool.map(lambda job: run_otter(*job), jobs)))
    return runs


def otter_scores(run: dict) -> dict:
    """{question: (score, max_score)} from otter's Gradescope results."""
    assert "results" in run, run.get("error")
    return {test["name"]: (float(test["score"]), float(test["max_score"]))
            for test in run["results"]["tests"] if "max_score" in test}


@pytest.mark.parametrize("assignment", IDS)
def test_otter_run_agrees_with_course_grader(otter_runs, assignment):
    policy = shipped_gpu_policy(assignment)
    for label in ("full", "blank"):
        ours = our_results(assignment)[label]
        expected = in_kernel_points(ours, policy)
        scores = otter_scores(otter_runs[(assignment, label)])
        context = f"{assignment}/{label}: otter {scores}\n{explain(ours)}"
        assert set(scores) == set(expected), context
        for question, cases in expected.items():
            score, max_score = scores[question]
            assert score == pytest.approx(sum(cases.values())), context
            # every test case counts in otter's total, including those the course grader skipped
            assert max_score == pytest.approx(sum(c["points"] for c in ours["questions"][question]["cases"])), context


@pytest.mark.parametrize("assignment", IDS)
def test_otter_run_gives_full_marks_and_zero(otter_runs, assignment):
    """Full marks for the full sample; zero for the blank one, except CUDA-only tests that the
    shipped policy 'exclude' lets pass on a machine without a GPU (reported, not hidden)."""
    policy = shipped_gpu_policy(assignment)
    full = otter_scores(otter_runs[(assignment, "full")])
    possible = sum(m for _, m in full.values())
    assert possible > 0 and sum(s for s, _ in full.values()) == pytest.approx(possible), full
    blank = otter_scores(otter_runs[(assignment, "blank")])
    ours = our_results(assignment)["blank"]
    free = sum(c["points"] for q in ours["questions"].values() for c in q["cases"]
               if c.get("skipped") and policy == "exclude")
    assert sum(s for s, _ in blank.values()) == pytest.approx(free), (blank, explain(ours))
