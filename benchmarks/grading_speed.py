"""Course grader vs a sequential `otter run` loop, on the same submissions, in one run.

    .venv/bin/python -m benchmarks.grading_speed [--assignment ssm_forward_cpu] [--copies 2]

Grades K copies of the sample submissions (full, partial, blank) plus the mutants of the
assignment twice: once with plain otter-grader 7.0.0 (`otter run`, one submission after
another, the way it works without Docker) and once with `python -m autograder grade`
(sandboxed, parallel). Prints both wall times, the ratio, and whether the verdicts agree.
Absolute times depend on the machine and its load; the ratio from one run is the figure.
With SEQMOD_ZYGOTE=off the course grader starts a fresh interpreter per submission (no warm
zygote), which shows how much of the speed-up the shared, read-only start-up accounts for.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder import assignments
from autograder.assignments import ROOT
from autograder.grade import grade_all
from tests import notebooks
from tools.make_samples import filled


def make_submissions(assignment, copies, folder: Path):
    folder.mkdir(parents=True)
    samples = sorted((ROOT / "data" / "sample_submissions" / assignment).glob("*.ipynb"))
    for k in range(copies):
        for sample in samples:
            shutil.copy(sample, folder / f"{sample.stem}_{k}.ipynb")
    mutants = __import__(f"tests.mutants.{assignment}", fromlist=["MUTANTS"]).MUTANTS
    spec = assignments.Assignment(assignment)
    for mutant in mutants:  # a student's notebook with one known mistake
        nb = notebooks.with_replacements(assignment, mutant.replace, base=filled(spec, 1.0))
        notebooks.write(nb, folder / f"mutant_{mutant.name}.ipynb")
    return sorted(folder.glob("*.ipynb"))


def otter_loop(spec, paths, out: Path):
    scores = {}
    for path in paths:
        target = out / path.stem
        target.mkdir(parents=True)
        subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(spec.zip_path), "-o", str(target),
                        str(path)], capture_output=True, text=True, timeout=1800)
        try:
            tests = json.loads((target / "results.json").read_text())["tests"]
            scores[path.name] = {t["name"]: float(t["score"]) for t in tests if "score" in t}
        except (OSError, ValueError, KeyError):
            scores[path.name] = None
    return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", default="ssm_forward_cpu")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    spec = assignments.get(args.assignment)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = make_submissions(args.assignment, args.copies, tmp / "subs")
        print(f"{len(paths)} submissions of {args.assignment}, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")

        started = time.monotonic()
        otter_scores = otter_loop(spec, paths, tmp / "otter")
        otter_seconds = time.monotonic() - started

        started = time.monotonic()
        ours = grade_all(args.assignment, [tmp / "subs"], tmp / "ours", workers=args.workers, force=True)
        ours_seconds = time.monotonic() - started

    agree = 0
    for result in ours:
        theirs = otter_scores.get(result["file"])
        mine = {q: d["score"] for q, d in result["questions"].items()}
        same = theirs is not None and all(abs(theirs.get(q, -1) - s) < 1e-9 for q, s in mine.items())
        agree += same
        if not same:
            print(f"  verdicts differ on {result['file']}: otter {theirs}, course grader {mine}")
    n = len(paths)
    print(f"otter run, sequential : {otter_seconds:7.1f} s  ({otter_seconds / n:5.1f} s per submission)")
    print(f"course grader, {args.workers} workers: {ours_seconds:7.1f} s  ({ours_seconds / n:5.1f} s per submission, "
          f"sandboxed, hidden tests in a clean process)")
    print(f"speed-up: {otter_seconds / ours_seconds:.2f}x; verdicts agree on {agree}/{n} submissions")


if __name__ == "__main__":
    main()
