"""Course grader vs a sequential `otter run` loop, on the same submissions, in one run.

    .venv/bin/python -m benchmarks.grading_speed [--assignment ssm_forward_cpu] [--copies 2]

Grades K copies of the sample submissions (full, partial, blank) plus the mutants of the
assignment twice: once with plain otter-grader 7.0.0 (`otter run`, one submission after
another, the way it works without Docker) and once with `python -m autograder grade`
(sandboxed, parallel). Prints both wall times, the ratio, and whether the verdicts agree.
Absolute times depend on the machine and its load; the ratio from one run is the figure.
With SEQMOD_ZYGOTE=off the course grader starts a fresh interpreter per submission (no warm
zygote), which shows how much of the speed-up the shared, read-only start-up accounts for.

    .venv/bin/python -m benchmarks.grading_speed --assignment ssm_forward_gpu --baseline 7995d1d

compares the course grader with itself instead of with otter: the same submissions (the earlier
commit's samples and mutants) are graded by the grader of that commit (exported to a temporary
folder with `git archive`) and by this tree's, alternately, `--rounds` times each. Prints each
wall time, the best of each side and their ratio, and whether the two agree on every total.
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


def timed_grade(tree: Path, assignment, folder: Path, out: Path, workers: int):
    """Grade `folder` with the grader of `tree` in a child process: (wall s, {file: total})."""
    if out.exists():
        shutil.rmtree(out)
    wall = time.monotonic()
    subprocess.run([sys.executable, "-m", "autograder", "grade", assignment, str(folder), "--out", str(out),
                    "--workers", str(workers), "--force", "--quiet"], cwd=tree, check=False,
                   env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
    wall = time.monotonic() - wall
    totals = {}
    for path in sorted(out.glob("**/*.json")):
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(record, dict) and "file" in record and "total" in record:
            totals[record["file"]] = record["total"]
    return wall, totals


def compare_with_baseline(args):
    """This tree's grader against an earlier commit's, on the same submissions, alternately."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        baseline = tmp / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        # The baseline's own samples and mutants: notebooks both graders can run (a newer notebook's
        # setup cell may need library functions the baseline does not have).
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                        "from benchmarks.grading_speed import make_submissions; "
                        "make_submissions(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))",
                        args.assignment, str(args.copies), str(tmp / "subs")], cwd=baseline, check=True,
                       env={**os.environ, "PYTHONPATH": str(baseline)}, capture_output=True)
        paths = sorted((tmp / "subs").glob("*.ipynb"))
        print(f"{len(paths)} submissions of {args.assignment}, {os.cpu_count()} cores, {args.workers} workers, "
              f"load average {os.getloadavg()[0]:.1f}; baseline {args.baseline}, {args.rounds} rounds each")
        best = {"baseline": float("inf"), "this tree": float("inf")}
        totals = {}
        for round_ in range(args.rounds):
            order = [("baseline", baseline), ("this tree", ROOT)]
            for label, tree in order if round_ % 2 == 0 else order[::-1]:
                wall, totals[label] = timed_grade(tree, args.assignment, tmp / "subs", tmp / "out", args.workers)
                best[label] = min(best[label], wall)
                print(f"  round {round_ + 1}, {label:9}: {wall:7.1f} s")
    print(f"baseline : {best['baseline']:7.1f} s (best of {args.rounds})")
    print(f"this tree: {best['this tree']:7.1f} s (best of {args.rounds})")
    print(f"this tree / baseline: {best['this tree'] / best['baseline']:.3f}")
    differ = sorted(f for f in totals["this tree"] if totals["baseline"].get(f) != totals["this tree"][f])
    print(f"totals differ on {len(differ)} of {len(totals['this tree'])} submissions"
          + (f" (questions changed since the baseline?): {', '.join(differ[:8])}" if differ else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", default="ssm_forward_cpu")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--baseline", metavar="REF", help="compare with the grader of this git commit, not otter")
    parser.add_argument("--rounds", type=int, default=2, help="gradings per side with --baseline")
    args = parser.parse_args()
    if args.baseline:
        return compare_with_baseline(args)
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
