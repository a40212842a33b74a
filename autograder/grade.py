"""Grade a folder of submissions without Docker: parallel, sandboxed, resumable.

    python -m autograder grade ASSIGNMENT PATH... --out DIR [--workers N] [--timeout S]

Writes DIR/grades.csv (otter's final_grades.csv columns), DIR/results/*.json (one per
submission, reused on the next run while the notebook is unchanged), DIR/feedback/*.md (for
students), and DIR/summary.md with a score histogram.
"""
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from . import assignments, report, sanitize, settings
from .files import atomic_write
from .limits import Limits
from .module_imports import notebook_imports
from .notebook_shape import read_trusted
from .results import Outcome, Status, SubmissionResult, outcome_of
from .staging import sweep_leftovers
from .submissions import collect, label_for
from .testfiles import load_questions
from .zygote_client import ZygoteServer

RESULT_VERSION = 1


def add_arguments(parser):
    """The `grade` subcommand's options."""
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
                        default=settings.gpu_policy(),
                        help="CUDA-only tests without a GPU: 'exclude' leaves them out of the total, "
                             "'required' scores them 0 (default %(default)s, from course.toml)")
    parser.add_argument("--force", action="store_true", help="regrade everything, ignoring saved results")
    parser.add_argument("--accept-review", action="append", default=[], metavar="FILE",
                        help="a submission on the integrity review list that a TA checked: regrade it with its "
                             "structure and timing measurements trusted (recorded in its result); repeatable")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--written", type=Path, metavar="FILE",
                        help="written scores to merge (the written_scores.csv format): adds the written columns, "
                             "a written and a course total; bad scores are refused and nothing is written")


def cache_key(submission, spec, limits, gpu_policy, accepted=False) -> str:
    """What a saved result depends on: the submission, the assignment's tests, the limits, the GPU policy and a
    TA's review acceptance."""
    digest = hashlib.sha256()
    digest.update(submission.key.encode())
    digest.update(spec.zip_path.read_bytes())
    for source in sorted(Path(__file__).parent.glob("*.py")):  # a grader change regrades
        digest.update(source.read_bytes())
    digest.update(f"{RESULT_VERSION}:{limits}:{gpu_policy}:{'accepted' if accepted else ''}".encode())
    return digest.hexdigest()


def _saved_result(target: Path, key: str):
    try:
        saved = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    if outcome_of(saved).status is Status.GRADER_ERROR:
        return None  # not the submission's doing: try again
    saved["reused"] = True
    return saved


def _unrunnable(spec, outcome: Outcome, gpu_policy) -> dict:
    """The result of a submission that no judge graded, for the reason in `outcome`."""
    return SubmissionResult.unrunnable(spec.id, load_questions(spec.zip_path), outcome, gpu_policy).to_dict()


def _save(result, target: Path):
    atomic_write(target, json.dumps(result, indent=1))


def _judge_task(assignment, notebook: bytes, limits, gpu_policy, zygote, accepted=False) -> dict:
    """Runs in a judge process of the pool (a clean process that never runs notebook code)."""
    from .judge import grade
    started_at = time.time()
    with tempfile.TemporaryDirectory(prefix="seqmod-judge-") as tmp:
        path = Path(tmp) / "submission.ipynb"
        path.write_bytes(notebook)
        result = grade(assignment, path, limits, gpu_policy=gpu_policy, zygote=zygote, accept_review=accepted)
    result["started_at"] = started_at  # when a judge took it up (the row's time limit runs from here)
    return result


def _judge_process_setup(grader_pid):
    """In each judge process. One torch thread: parallelism comes from grading several
    submissions at once. And no judge outlives the TA's command (killed, or its terminal gone)."""
    import torch
    torch.set_num_threads(1)

    def watch():
        while True:
            time.sleep(1.0)
            try:
                os.kill(grader_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, daemon=True).start()


def _notebook_imports(spec) -> list:
    """The modules the released notebook imports: the batch's zygote imports them once."""
    cells = read_trusted(spec.student).cells
    return notebook_imports(c.source for c in cells if c.cell_type == "code")


def _judge_pool(workers):
    """Long-lived judge processes, forked from a server that has imported torch and the checks
    once: no import cost per submission. They keep no state between submissions."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["autograder.judge"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_judge_process_setup,
                               initargs=(os.getpid(),))


class Progress:
    """The one-line progress display of a batch (nothing when quiet)."""
    def __init__(self, total, quiet):
        self.total, self.done, self.quiet = total, 0, quiet
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def tick(self, label, result):
        """Count one finished submission and show where the batch stands."""
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
            shown = sanitize.name(label, 30)
            sys.stderr.write(f"\r[{bar}] {self.done}/{self.total}  eta {eta:4.0f} s  {shown}: {score}{reused}\033[K")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _judge_batch(spec, pending, workers, limits, gpu_policy, zygote, accepted=frozenset()):
    """Judge (index, submission, target, key) entries in a pool; yield (index, saved result)."""
    for attempt in (1, 2):  # a judge process that dies takes its pool down: retry once in a new one
        if not pending:
            return
        broken = []
        with _judge_pool(min(workers, len(pending))) as pool:
            futures = {pool.submit(_judge_task, spec.id, entry[1].notebook, limits, gpu_policy, zygote,
                                   entry[1].identity in accepted): entry
                       for entry in pending}
            for future in as_completed(futures):
                index, submission, target, key = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    if attempt == 1:
                        broken.append(futures[future])
                        continue
                    result = _unrunnable(spec, Outcome.grader_error("the judge process died"), gpu_policy)
                except Exception as error:  # noqa: BLE001 - the batch goes on; the row says why
                    result = _unrunnable(spec, Outcome.grader_error(f"{type(error).__name__}: {error}"), gpu_policy)
                result["returned_at"] = time.time()
                _labelled(result, submission, key)
                _save(result, target)
                yield index, result
        pending = broken


def _stable_labels(submissions, earlier):
    """A file graded into this folder before keeps its label; a new file whose label another
    file already has there (or in this batch) is labelled by its full path instead."""
    current = {s.identity for s in submissions}
    taken = {row["file"] for identity, row in earlier.items() if identity not in current}
    for submission in submissions:
        if submission.identity in earlier:
            submission.label = earlier[submission.identity]["file"]
    counts = {}
    for submission in submissions:
        counts.setdefault(submission.label, set()).add(submission.identity)
    for submission in submissions:
        if submission.label in taken or len(counts[submission.label]) > 1:
            if submission.identity not in earlier:
                submission.label = label_for(submission.source)


def grade_all(assignment_id, paths, out: Path, *, workers=None, limits=None, force=False, quiet=True,
              gpu_policy=None, written_file=None, accept_review=()) -> list:
    """Grade every submission found in `paths` into the folder `out` (grades.csv, results/,
    feedback/, summary.md); returns their results, in the order the submissions were found.

    workers: submissions graded at once (default: the number of cores).
    limits: the `sandbox.Limits` of each submission (default: `Limits()`).
    force: regrade every submission, even one whose saved result is still valid.
    quiet: no progress line on stderr.
    gpu_policy: 'exclude' or 'required' for CUDA-only tests without a GPU (default: course.toml).
    written_file: the TA's written scores (written_scores.csv format) to merge into the reports.
    accept_review: files of submissions whose integrity review a TA accepted.
    """
    spec = assignments.get(assignment_id)
    limits = limits or Limits()
    gpu_policy = gpu_policy or settings.gpu_policy()
    submissions = collect(paths, prefer=f"{spec.id}.ipynb")
    accepted = frozenset(s.identity for s in collect(accept_review, prefer=f"{spec.id}.ipynb")) if accept_review \
        else frozenset()
    results_dir = out / "results"
    earlier = report.saved_rows(results_dir, spec)
    _stable_labels(submissions, earlier)
    written = written_part(spec, submissions, earlier, written_file)  # checked before anything is written
    results_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(len(submissions), quiet)
    workers = max(1, workers or os.cpu_count() or 1)
    if assignments.cuda_available():  # timing tests of parallel submissions take turns
        os.environ["SEQMOD_GPU_LOCK"] = str(Path(tempfile.gettempdir()) / "seqmod-gpu.lock")
    results, pending = {}, []
    for index, submission in enumerate(submissions):
        target = earlier.get(submission.identity, {}).get("_path") or report.result_path(results_dir, submission)
        key = cache_key(submission, spec, limits, gpu_policy, submission.identity in accepted)
        saved = None if force else _saved_result(target, key)
        if saved is None and submission.problem:
            saved = _labelled(_unrunnable(spec, submission.problem, gpu_policy), submission, key)
            _save(saved, target)
        if saved is not None:
            results[index] = saved
            progress.tick(submission.label, saved)
        else:
            pending.append((index, submission, target, key))
    if pending:
        sweep_leftovers()
        with ZygoteServer(preload=_notebook_imports(spec)) as zygote:  # imports torch once for the batch
            for index, result in _judge_batch(spec, pending, workers, limits, gpu_policy, zygote.address, accepted):
                results[index] = result
                progress.tick(result["file"], result)
    ordered = [results[i] for i in range(len(submissions))]
    # The CSV covers the class: rows graded into this folder earlier (say, before one student
    # was regraded on their own) stay while their files exist and the tests are the same.
    current = {s.identity for s in submissions}
    kept = [row for identity, row in earlier.items() if identity not in current and os.path.exists(identity)]
    rows = ordered if not kept else sorted(ordered + kept, key=lambda r: str(r["file"]))
    report.write_all(spec, rows, out, time.monotonic() - progress.started, written)
    return ordered


def written_part(spec, submissions, earlier, written_file):
    """The written questions' part of the reports: questions, which rows answered them, and the
    merged scores (raises WrittenScoresError on bad scores)."""
    from .written_questions import answers_of, written_questions
    from .written_scores import load
    questions = written_questions(spec)
    answered = {s.label: {name: a.answered for name, a in answers_of(s.notebook, questions).items()}
                for s in submissions}
    class_files = {s.label for s in submissions} | {
        row["file"] for identity, row in earlier.items() if os.path.exists(identity)}
    scores = load(written_file, spec, class_files) if written_file else None
    return {"questions": questions, "answered": answered, "scores": scores}


def _labelled(result, submission, key) -> dict:
    result.update(file=submission.label, source=submission.identity, key=key, reused=False)
    if submission.note:
        result.setdefault("notes", []).append(submission.note)
    return result


def run(args) -> int:
    """Exit status: 0 when every input got its grade, 1 when some rows are grader errors (run
    again: those are regraded), 2 when no submission was found."""
    for path in map(Path, args.paths):
        if path.is_dir() and not collect([path]):
            print(f"warning: no .ipynb or .zip files in {path}", file=sys.stderr)
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb)
    from .written_scores import WrittenScoresError
    try:
        results = grade_all(args.assignment, args.paths, args.out, workers=args.workers, limits=limits,
                            force=args.force, quiet=args.quiet, gpu_policy=args.gpu_policy,
                            written_file=args.written, accept_review=args.accept_review)
    except WrittenScoresError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.score_table(results))
    print(f"\nwrote {args.out / 'grades.csv'}, feedback in {args.out / 'feedback'}, "
          f"summary in {args.out / 'summary.md'}")
    if not results:
        print("error: no submissions found", file=sys.stderr)
        return 2
    failed = [r["file"] for r in results if outcome_of(r).status is Status.GRADER_ERROR]
    if failed:
        print(f"error: {len(failed)} submission(s) hit a grader error (not the students' doing); "
              "run the same command again to regrade them", file=sys.stderr)
        return 1
    return 0
