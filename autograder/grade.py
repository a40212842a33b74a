"""Grade a folder of submissions without Docker: parallel, sandboxed, resumable.

    python -m autograder grade ASSIGNMENT PATH... --out DIR [--workers N] [--timeout S]

Writes DIR/grades.csv (otter's final_grades.csv columns), DIR/results/*.json (one per
submission, reused on the next run while the notebook is unchanged), DIR/feedback/*.md (for
students), and DIR/summary.md with a score histogram.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from . import assignments, report, settings
from .sandbox import Limits
from .submissions import collect

RESULT_VERSION = 1


def add_arguments(parser):
    parser.add_argument("assignment", help="assignment id, e.g. ssm_forward_cpu")
    parser.add_argument("paths", nargs="+", help=".ipynb files, otter export .zip files, or folders of them")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--timeout", type=float, default=settings.grading("timeout_s", Limits.timeout_s),
                        help="seconds allowed per submission (default %(default)s, from course.toml)")
    parser.add_argument("--memory-mb", type=int, default=settings.grading("memory_mb", Limits.memory_mb),
                        help="memory cap per submission in MB (default %(default)s, from course.toml)")
    parser.add_argument("--gpu-policy", choices=settings.GPU_POLICIES,
                        default=settings.grading("gpu_policy", "exclude"),
                        help="CUDA-only tests without a GPU: 'exclude' leaves them out of the total, "
                             "'required' scores them 0 (default %(default)s, from course.toml)")
    parser.add_argument("--force", action="store_true", help="regrade everything, ignoring saved results")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def cache_key(submission, spec, limits, gpu_policy) -> str:
    import hashlib
    digest = hashlib.sha256()
    digest.update(submission.key.encode())
    digest.update(spec.zip_path.read_bytes())
    for source in sorted(Path(__file__).parent.glob("*.py")):  # a grader change regrades
        digest.update(source.read_bytes())
    digest.update(f"{RESULT_VERSION}:{limits}:{gpu_policy}".encode())
    return digest.hexdigest()


def safe_name(label: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return keep[:120] or "submission"


def grade_one(submission, spec, limits, results_dir: Path, force: bool, gpu_policy: str) -> dict:
    target = results_dir / (safe_name(submission.label) + ".json")
    key = cache_key(submission, spec, limits, gpu_policy)
    if not force and target.exists():
        try:
            saved = json.loads(target.read_text())
            if saved.get("key") == key:
                saved["reused"] = True
                return saved
        except (ValueError, OSError):
            pass
    if submission.problem:
        result = report.unrunnable(spec, submission.problem)
    else:
        result = _judge_in_subprocess(submission, spec, limits, gpu_policy)
    result.update(file=submission.label, key=key, reused=False)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, target)
    return result


def _judge_in_subprocess(submission, spec, limits, gpu_policy) -> dict:
    with tempfile.TemporaryDirectory(prefix="seqmod-judge-") as tmp:
        notebook = Path(tmp) / "submission.ipynb"
        notebook.write_bytes(submission.notebook)
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "autograder", "judge", spec.id, str(notebook), str(out),
                   "--timeout", str(limits.timeout_s), "--memory-mb", str(limits.memory_mb),
                   "--call-timeout", str(limits.call_timeout_s),
                   "--gpu-policy", gpu_policy]
        env = dict(os.environ)
        if assignments.cuda_available():  # timing tests of parallel submissions take turns
            env["SEQMOD_GPU_LOCK"] = str(Path(tempfile.gettempdir()) / "seqmod-gpu.lock")
        try:
            done = subprocess.run(command, capture_output=True, text=True, cwd=assignments.ROOT,
                                  timeout=limits.timeout_s + 120, env=env)
        except subprocess.TimeoutExpired:
            return report.unrunnable(spec, f"timeout after {limits.timeout_s:g} s")
        if out.exists():
            return json.loads(out.read_text())
        return report.unrunnable(spec, "grader error: " + (done.stderr.strip().splitlines() or ["no output"])[-1][:300])


class Progress:
    def __init__(self, total, quiet):
        self.total, self.done, self.quiet = total, 0, quiet
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def tick(self, label, result):
        with self.lock:
            self.done += 1
            if self.quiet:
                return
            elapsed = time.monotonic() - self.started
            eta = elapsed / self.done * (self.total - self.done)
            width = 24
            filled = int(width * self.done / max(self.total, 1))
            bar = "#" * filled + "." * (width - filled)
            score = f"{result.get('total', 0):g}/{result.get('possible', 0):g}"
            reused = " (saved)" if result.get("reused") else ""
            sys.stderr.write(f"\r[{bar}] {self.done}/{self.total}  eta {eta:4.0f} s  {label[:30]}: {score}{reused}\033[K")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def grade_all(assignment_id, paths, out: Path, workers=None, limits=None, force=False, quiet=True,
              gpu_policy=None):
    spec = assignments.get(assignment_id)
    limits = limits or Limits()
    gpu_policy = gpu_policy or settings.grading("gpu_policy", "exclude")
    submissions = collect(paths)
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(len(submissions), quiet)
    results = {}
    with ThreadPoolExecutor(max_workers=max(1, workers or os.cpu_count() or 1)) as pool:
        futures = {pool.submit(grade_one, s, spec, limits, results_dir, force, gpu_policy): s for s in submissions}
        for future in as_completed(futures):
            submission = futures[future]
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - the batch goes on; the row says why
                result = report.unrunnable(spec, f"grader error: {type(error).__name__}: {error}")
                result["file"] = submission.label
            results[submission.label] = result
            progress.tick(submission.label, result)
    ordered = [results[s.label] for s in submissions]
    report.write_all(spec, ordered, out, time.monotonic() - progress.started)
    return ordered


def run(args) -> int:
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb)
    results = grade_all(args.assignment, args.paths, args.out, args.workers, limits, args.force, args.quiet,
                        args.gpu_policy)
    print(report.score_table(results))
    print(f"\nwrote {args.out / 'grades.csv'}, feedback in {args.out / 'feedback'}, summary in {args.out / 'summary.md'}")
    return 0
