"""Command line: python -m autograder {build,grade,written,handout,demo} ..."""
import argparse
import sys
from pathlib import Path


def main(argv=None):
    """Run one subcommand (`build`, `grade`, `written`, `handout`, `demo`, ...); returns its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Build and grade the course notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="regenerate notebooks/ and the autograder zips from solutions/")
    b.add_argument("assignments", nargs="*", help="only these assignment ids")
    b.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    b.add_argument("--nbgrader", action="store_true",
                   help="after building, also export nbgrader source assignments to build/nbgrader/source/")
    g = sub.add_parser("grade", help="grade submissions without Docker")
    from .grade import add_arguments
    add_arguments(g)
    w = sub.add_parser("written", help="one page per written question to grade by hand; merge the saved scores")
    from .written import add_arguments as add_written_arguments
    add_written_arguments(w)
    h = sub.add_parser("handout", help="the solutions handout (executed reference notebook, .ipynb and .html)")
    h.add_argument("assignment", help="assignment id")
    h.add_argument("--out", required=True, type=Path, help="folder to write <id>_solutions.ipynb and .html into")
    h.add_argument("--timeout", type=int, default=1800, help="seconds allowed for one cell (default 1800)")
    sub.add_parser("demo", help="build, run the reference notebooks, grade the sample submissions")
    args = parser.parse_args(argv)

    if args.command == "build":
        from .build import build
        changed = build(args.assignments or None, check_only=args.check)
        if not changed:
            print("everything is up to date")
        elif args.check:
            print(f"{len(changed)} generated file(s) are stale: run `python -m autograder build`")
        if args.nbgrader and not args.check:
            from .nbgrader_export import export
            for folder in export(args.assignments or None):
                print(f"exported: {folder}")
        elif args.nbgrader:
            print("--check: the nbgrader export was skipped (it writes only the git-ignored build/nbgrader/)")
        return 1 if (args.check and changed) else 0
    if args.command == "grade":
        from .grade import run
        return run(args)
    if args.command == "written":
        from .written import run as written_run
        return written_run(args)
    if args.command == "handout":
        from .handout import write_handout
        for path in write_handout(args.assignment, args.out, timeout=args.timeout):
            print(f"wrote {path}")
        return 0
    if args.command == "demo":
        from .demo import main as demo_main
        return demo_main()
    return 2


if __name__ == "__main__":
    sys.exit(main())
