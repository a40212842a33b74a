"""`make demo`: build, run the reference notebooks, grade the sample submissions, print scores."""
import os
import time

import nbformat
from nbclient import NotebookClient

from . import assignments
from .assignments import ROOT
from .build import build
from .grade import grade_all
from .report import score_table
from .written import make_pages

OUT = ROOT / "demo-output"


def run_reference(spec, grading_mode: bool) -> float:
    """Run one master notebook in a Jupyter kernel (in grading mode when asked); the seconds it took."""
    nb = nbformat.read(spec.master, as_version=4)
    env_before = os.environ.get("SEQMOD_GRADING")
    if grading_mode:
        os.environ["SEQMOD_GRADING"] = "1"
    started = time.monotonic()
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(spec.master.parent)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("SEQMOD_GRADING", None)
        else:
            os.environ["SEQMOD_GRADING"] = env_before
    seconds = time.monotonic() - started
    (OUT / "executed").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, OUT / "executed" / spec.master.name)
    return seconds


def _sample_folders(specs):
    """(assignment, its folder of sample submissions) for each assignment that has one."""
    for spec in specs:
        samples = ROOT / "data" / "sample_submissions" / spec.id
        if samples.exists():
            yield spec, samples


def main():
    """`python -m autograder demo`: build, run the reference notebooks, grade the sample submissions."""
    grading_mode = os.environ.get("DEMO_FULL") != "1"
    print("== 1. build notebooks/ and the autograder zips from solutions/")
    changed = build()
    print("\n".join(f"   wrote {p.relative_to(ROOT)}" for p in changed) or "   everything was up to date")
    specs = assignments.available()
    print(f"== 2. run the reference notebooks in a Jupyter kernel"
          f" ({'grading mode; DEMO_FULL=1 for the full timing sweeps' if grading_mode else 'full'})")
    for spec in specs:
        print(f"   {spec.id}: ran in {run_reference(spec, grading_mode):.1f} s "
              f"-> demo-output/executed/{spec.master.name}")
    print("== 3. grade the sample submissions in data/sample_submissions/")
    for spec, samples in _sample_folders(specs):
        results = grade_all(spec.id, [samples], OUT / "grades" / spec.id, quiet=False)
        print(f"\n{spec.id}  (grades.csv, feedback and summary in demo-output/grades/{spec.id}/)")
        print(score_table(results) + "\n")
    print("== 4. written answers of the sample submissions: one page per question to grade by hand")
    for spec, samples in _sample_folders(specs):
        pages = make_pages(spec.id, [samples], OUT / "grades" / spec.id, quiet=True)
        for page in pages.values():
            print(f"   {page.relative_to(ROOT)}")
    print("   open a page in a browser, tick the rubric, Save; then `python -m autograder written ID --out DIR "
          "--merge-saved FILE` and `grade ... --written DIR/written_scores.csv` (README, TAs)")
    return 0
