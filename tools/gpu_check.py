"""One command that proves the GPU half of the module on a GPU: `make gpu-check`.

    python3 tools/gpu_check.py [--repeats 20] [--budget 450] [--wheels tools/gpu_wheels] [--dry-run]

On a machine with CUDA:
  0. packages: what is missing from this Python is installed from the wheels folder
     (tools/gpu_wheels.sh) with `pip install --no-index --target` into a temporary folder, which goes
     on PYTHONPATH and, through SEQMOD_SANDBOX_SITE, into the grader's sandboxes;
  1. prints the device (name, memory, driver, torch and CUDA versions);
  2. runs the CUDA tests of the suite (`pytest -m cuda`, ssm_forward_gpu only), and the reference
     and sample notebooks of ssm_forward_gpu in normal mode (not grading mode) in a Jupyter kernel;
  3. grades the reference notebook N times in one batch under the GPU policy 'required' and
     counts full marks (target N/N: the timing tests must not flake);
  4. runs benchmarks/ssm_gpu.py and the GPU path of benchmarks/ridge_attention.py, writing
     benchmarks/results/*_cuda.txt (first line: the device);
  5. prints one table: each target, what was measured, met or not (also written to
     benchmarks/results/gpu_check_cuda.txt).
They run in the order 0, 1, 3, 4, 2 (the measurements first). Every step runs in child processes
with its own time limit, and no step runs past the check's budget (--budget); the table is printed
whatever failed. Exit status 0 when every target was met.

Without CUDA it says so in one line, then checks that every step is wired (scripts and files
exist, commands parse, pytest collects the CUDA tests, the wheels folder is valid if present) and
exits 0 when they are.

It needs only the Python that runs it, with torch: not the project's .venv.
"""
import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "ssm_forward_gpu"
REFERENCE = ROOT / "solutions" / f"{ASSIGNMENT}.ipynb"
SAMPLES = ROOT / "data" / "sample_submissions" / ASSIGNMENT
RESULTS = ROOT / "benchmarks" / "results"
WHEELS = ROOT / "tools" / "gpu_wheels"
SSM_BENCHMARK = ROOT / "benchmarks" / "ssm_gpu.py"
RIDGE_BENCHMARK = ROOT / "benchmarks" / "ridge_attention.py"
# The test files that hold `cuda`-marked tests (tests/conftest.py marks the ssm_forward_gpu cases of
# the last two). Named, not found: collecting all of tests/ would import nbgrader, which comes here
# without its dependencies. tests/test_gpu_check.py keeps this list in step with the marker.
CUDA_TEST_FILES = ("tests/test_cuda.py", "tests/test_soundness.py", "tests/test_dummy_cheats.py")
# Module -> the distribution that provides it: everything the steps import besides torch.
NEEDED = {"numpy": "numpy", "pandas": "pandas", "matplotlib": "matplotlib", "pytest": "pytest",
          "nbformat": "nbformat", "nbclient": "nbclient", "ipykernel": "ipykernel", "IPython": "ipython",
          "jupyter_client": "jupyter-client", "otter": "otter-grader"}
# Seconds each step may take at most (less when the check's budget runs out first).
LIMITS = {"packages": 90, "device": 45, "cuda tests": 200, "notebooks": 120, "gradings": 150,
          "ssm benchmark": 100, "ridge benchmark": 80}
# Targets of benchmarks/ssm_gpu.py (its TARGETS line), and of this check for ridge attention,
# whose benchmark names none: the chunked form is the shape a GPU wants (solutions/ridge_attention).
SSM_T, SSM_CONV_SPEEDUP, SSM_DEPTHWISE_SPEEDUP, SSM_FFT_BW_FACTOR, AGREE = 4096, 20.0, 10.0, 3.0, 1e-4
RIDGE_N, RIDGE_CHUNK_SPEEDUP, RIDGE_ERR = 2048, 5.0, 1e-3


@dataclass
class Row:
    step: str
    target: str
    measured: str
    met: object  # True, False, or None: not measured (dry run, or the step did not get that far)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def run(command, limit_s, log: Path, env=None, cwd=ROOT) -> tuple:
    """Run a child process with a time limit; its output goes to `log`. (returncode or None on
    timeout, seconds)."""
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen([str(c) for c in command], cwd=cwd, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = process.wait(timeout=max(limit_s, 1))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)  # the whole group: kernels, judges, sandboxes
            process.wait()
            code = None
    return code, time.monotonic() - started


def tail(log: Path, lines=15) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("      " + line for line in text[-lines:])


class Check:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.budget
        self.scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.scratch.chmod(0o755)  # a root grader runs notebooks as another uid: they read the wheels here
        self.rows = []
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.device = "no CUDA device"

    def limit(self, step) -> float:
        return min(LIMITS[step], self.deadline - time.monotonic())

    def step(self, name, function):
        """Run one step; whatever it raises becomes a failed row, never the end of the check."""
        left = self.limit(name)
        print(f"== {name} (limit {max(left, 0):.0f} s)", flush=True)
        if left < 5:
            self.rows.append(Row(name, "step ran", "not run: the check's time budget was spent", False))
            return
        started = time.monotonic()
        try:
            function(left)
        except Exception as error:  # noqa: BLE001 - one broken step must not hide the others
            self.rows.append(Row(name, "step ran", f"failed: {type(error).__name__}: {error}", False))
        print(f"   {time.monotonic() - started:.0f} s", flush=True)

    def python(self, *args):
        return [sys.executable, *args]

    # -- 0. packages ---------------------------------------------------------------------------
    def missing_modules(self):
        return sorted(m for m in NEEDED if importlib.util.find_spec(m) is None)

    def install(self, limit_s):
        missing = self.missing_modules()
        if not missing:
            self.rows.append(Row("packages", "everything importable", "nothing to install", True))
            return
        wheels = Path(self.args.wheels)
        if not wheels.is_dir():
            self.rows.append(Row("packages", "everything importable",
                                 f"missing {missing}, and no wheels in {wheels} (run tools/gpu_wheels.sh)", False))
            return
        present = set()
        for dist in importlib.metadata.distributions():
            present.add(canonical(dist.metadata["Name"] or ""))
        chosen = [w for w in sorted(wheels.glob("*.whl")) if canonical(w.name.split("-")[0]) not in present]
        site = self.scratch / "site"
        code, seconds = run(self.python("-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                        "--no-index", "--no-deps", "--no-compile", "--target", site, *chosen),
                            limit_s, self.scratch / "install.log", env=self.env)
        if code != 0:
            self.rows.append(Row("packages", "wheels installed", "pip failed:\n" + tail(self.scratch / "install.log"),
                                 False))
            return
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        self.env["SEQMOD_SANDBOX_SITE"] = str(site)
        sys.path.insert(0, str(site))
        importlib.invalidate_caches()
        still = self.missing_modules()
        self.rows.append(Row("packages", "everything importable",
                             f"{len(chosen)} wheels installed in {seconds:.0f} s"
                             + (f"; still missing {still}" if still else ""), not still))
        code, _ = run(self.python("-m", "pip", "check"), 60, self.scratch / "pip_check.log", env=self.env)
        # nbgrader comes without its dependencies on purpose (only its presence is needed).
        conflicts = [line for line in (self.scratch / "pip_check.log").read_text().splitlines()
                     if line.strip() and not line.lower().startswith("nbgrader") and "No broken" not in line]
        # Informational: a conflict with the machine's own packages is a warning, the steps decide.
        self.rows.append(Row("packages", "versions consistent (pip check; a warning only)",
                             "; ".join(conflicts[:4]) + (" ..." if len(conflicts) > 4 else "") if conflicts
                             else "no conflicts", None))

    # -- 1. device -----------------------------------------------------------------------------
    def probe_device(self, limit_s):
        log = self.scratch / "device.log"
        probe = ("import json, torch; p = torch.cuda.get_device_properties(0); print(json.dumps({"
                 "'name': p.name, 'memory_gib': p.total_memory / 2**30, 'capability': f'{p.major}.{p.minor}', "
                 "'torch': torch.__version__, 'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version()}))")
        code, _ = run(self.python("-c", probe), limit_s, log, env=self.env)
        if code != 0:
            self.rows.append(Row("device", "CUDA device", "probe failed:\n" + tail(log), False))
            return
        info = json.loads(log.read_text().strip().splitlines()[-1])
        driver = "unknown"
        if shutil.which("nvidia-smi"):
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30)
            driver = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 and smi.stdout.strip() else driver
        self.device = (f"{info['name']}, {info['memory_gib']:.0f} GiB, compute {info['capability']}, driver {driver}, "
                       f"torch {info['torch']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}")
        print(f"   device: {self.device}")
        self.rows.append(Row("device", "CUDA device", self.device, True))
        # Where the driver is found only through LD_LIBRARY_PATH, sandboxes need it passed on.
        bare = {k: v for k, v in self.env.items() if k != "LD_LIBRARY_PATH"}
        code, _ = run(self.python("-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"),
                      limit_s, self.scratch / "device_bare.log", env=bare)
        self.rows.append(Row("device", "CUDA found without LD_LIBRARY_PATH (information)",
                             f"{'yes' if code == 0 else 'no'}; "
                             f"LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '')!r}",
                             None))
        major_minor = tuple(int(x) for x in re.findall(r"\d+", info["torch"])[:2])
        self.rows.append(Row("device", "torch >= 2.11", info["torch"], major_minor >= (2, 11)))

    # -- 2. CUDA tests and notebooks -------------------------------------------------------------
    def cuda_tests(self, limit_s):
        report, log = self.scratch / "cuda_tests.xml", self.scratch / "cuda_tests.log"
        env = dict(self.env, SEQMOD_ASSIGNMENTS=ASSIGNMENT)
        code, seconds = run(self.python("-m", "pytest", "-m", "cuda", "-q", "-rfEs", "-p", "no:cacheprovider",
                                        "-o", "addopts=", f"--junitxml={report}", *CUDA_TEST_FILES),
                            limit_s, log, env=env)
        if code is None or not report.exists():
            why = f"timeout after {seconds:.0f} s" if code is None else f"pytest exited {code}"
            self.rows.append(Row("cuda tests", "all pass, none skipped", f"{why}:\n{tail(log)}", False))
            return
        suite = ElementTree.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        total, failed, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        passed = total - failed - errors - skipped
        measured = f"{passed} passed, {failed} failed, {errors} errors, {skipped} skipped in {seconds:.0f} s"
        ok = total > 0 and passed == total
        self.rows.append(Row("cuda tests", "all pass, none skipped",
                             measured + ("" if ok else "\n" + tail(log, 25)), ok))

    def notebooks(self, limit_s):
        notebooks = {"reference": REFERENCE, **{f"sample {p.stem}": p for p in sorted(SAMPLES.glob("*.ipynb"))}}
        env = dict(self.env, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")])))
        env.pop("SEQMOD_GRADING", None)

        def one(item):
            label, path = item
            folder = self.scratch / "notebooks" / label.replace(" ", "_")
            folder.mkdir(parents=True)
            notebook = folder / f"{ASSIGNMENT}.ipynb"  # otter.Notebook(...) names the file it belongs to
            shutil.copy(path, notebook)
            out, log = folder / "result.json", folder / "run.log"
            code, seconds = run(self.python(__file__, "--run-notebook", notebook, out), limit_s, log,
                                env=env, cwd=folder)
            if code != 0 or not out.exists():
                why = f"timeout after {seconds:.0f} s" if code is None else f"runner exited {code}"
                return Row("notebooks", f"{label} runs to the end", f"{why}:\n{tail(log)}", False)
            result = json.loads(out.read_text())
            errors = result["errors"]
            on_gpu = "device: cuda" in result["output"]
            measured = (f"{'on CUDA' if on_gpu else 'NOT on CUDA'}, {len(errors)} cell error(s) in {seconds:.0f} s"
                        + "".join(f"\n      cell {e['cell']}: {e['error'][:160]}" for e in errors[:3]))
            strict = label in ("reference", "sample full")
            target = "runs on CUDA without errors" if strict else "runs on CUDA to the end"
            return Row("notebooks", f"{label}: {target}", measured, on_gpu and (not errors or not strict))

        with ThreadPoolExecutor(len(notebooks)) as pool:
            self.rows.extend(pool.map(one, notebooks.items()))

    # -- 3. repeated gradings --------------------------------------------------------------------
    def gradings(self, limit_s):
        batch, out, log = self.scratch / "class", self.scratch / "grades", self.scratch / "gradings.log"
        batch.mkdir()
        for i in range(self.args.repeats):
            shutil.copy(REFERENCE, batch / f"reference_{i + 1:02d}.ipynb")
        code, seconds = run(self.python("-m", "autograder", "grade", ASSIGNMENT, batch, "--out", out,
                                        "--gpu-policy", "required", "--force", "--quiet"), limit_s, log, env=self.env)
        results = [json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))]
        self.rows.extend(grading_rows(results, self.args.repeats, seconds, code, tail(log)))

    # -- 4. benchmarks -------------------------------------------------------------------------
    def ssm_benchmark(self, limit_s):
        record, log = self.scratch / "ssm_gpu.json", self.scratch / "ssm_gpu.txt"
        code, seconds = run(self.python(SSM_BENCHMARK, "--json", record), limit_s, log, env=self.env)
        if code == 0 and record.exists():
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, RESULTS / "ssm_gpu_cuda.txt")
            self.rows.extend(ssm_rows(json.loads(record.read_text())))
        else:
            why = f"timeout after {seconds:.0f} s" if code is None else f"exited {code}"
            self.rows.append(Row("ssm benchmark", "benchmark ran", f"{why}:\n{tail(log)}", False))

    def ridge_benchmark(self, limit_s):
        record, log = self.scratch / "ridge.json", self.scratch / "ridge.log"
        RESULTS.mkdir(parents=True, exist_ok=True)
        code, seconds = run(self.python(RIDGE_BENCHMARK, "--device", "cuda", "--out",
                                        RESULTS / "ridge_attention_cuda.txt", "--json", record),
                            limit_s, log, env=self.env)
        if code == 0 and record.exists():
            self.rows.extend(ridge_rows(json.loads(record.read_text())))
        else:
            why = f"timeout after {seconds:.0f} s" if code is None else f"exited {code}"
            self.rows.append(Row("ridge benchmark", "benchmark ran", f"{why}:\n{tail(log)}", False))

    def run_all(self):
        started = time.monotonic()
        # The measurements a short budget must not lose come first: gradings and benchmarks.
        self.step("packages", self.install)
        self.step("device", self.probe_device)
        self.step("gradings", self.gradings)
        self.step("ssm benchmark", self.ssm_benchmark)
        self.step("ridge benchmark", self.ridge_benchmark)
        self.step("cuda tests", self.cuda_tests)
        self.step("notebooks", self.notebooks)
        table = summary(self.rows, f"gpu-check on {self.device}; {time.monotonic() - started:.0f} s in all")
        print("\n" + table)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "gpu_check_cuda.txt").write_text(table + "\n")
        return 0 if self.rows and all(r.met for r in self.rows) else 1

    # -- without CUDA: is every step wired? ---------------------------------------------------------
    def dry_run(self):
        checks = self.rows

        def wired(step, target, ok, measured):
            checks.append(Row(step, target, measured, bool(ok)))

        missing = self.missing_modules()
        wheels = Path(self.args.wheels)
        if missing and wheels.is_dir():  # as on the GPU machine: the wheels must bring what is missing
            self.install(LIMITS["packages"] * 3)
        if wheels.is_dir():
            code, _ = run(["bash", ROOT / "tools" / "gpu_wheels.sh", "--verify"], 60, self.scratch / "wheels.log",
                          env=dict(self.env, GPU_WHEELS=str(wheels), PYTHON=sys.executable))
            wired("packages", "wheels folder valid", code == 0, (self.scratch / "wheels.log").read_text().strip())
            in_folder = {canonical(w.name.split("-")[0]) for w in wheels.glob("*.whl")}
            image = {canonical(line) for line in (ROOT / "tools" / "gpu_image_packages.txt").read_text().split()
                     if not line.startswith("#")}
            uncovered = sorted(d for d in NEEDED.values() if canonical(d) not in in_folder | image)
            wired("packages", "each needed package on the GPU image or in the wheels", not uncovered,
                  f"not covered: {uncovered}" if uncovered else f"{len(NEEDED)} packages covered")
        else:
            wired("packages", "needed modules importable here (no wheels folder)", not missing,
                  f"missing {missing}" if missing else f"{len(NEEDED)} modules importable")
        files = [REFERENCE, SSM_BENCHMARK, RIDGE_BENCHMARK, *sorted(SAMPLES.glob("*.ipynb")),
                 ROOT / "autograder" / "zips" / f"{ASSIGNMENT}.zip"]
        absent = [str(p.relative_to(ROOT)) for p in files if not p.exists()]
        wired("files", "scripts, notebooks, zip exist", not absent and len(files) > 5,
              f"missing {absent}" if absent else f"{len(files)} files")
        commands = {
            "device": self.python("-c", "import torch; print(torch.__version__, torch.cuda.is_available())"),
            "gradings": self.python("-m", "autograder", "grade", "--help"),
            "ssm benchmark": self.python(SSM_BENCHMARK, "--help"),
            "ridge benchmark": self.python(RIDGE_BENCHMARK, "--help"),
            "notebooks": self.python("-c", "import sys, nbclient, nbformat\n"
                                     "for path in sys.argv[1:]: nbformat.validate(nbformat.read(path, as_version=4))\n"
                                     "print(len(sys.argv) - 1, 'notebooks valid')",
                                     REFERENCE, *sorted(SAMPLES.glob("*.ipynb"))),
        }
        commands["cuda tests"] = self.python("-m", "pytest", "-m", "cuda", "--collect-only", "-q", "-p",
                                             "no:cacheprovider", "-o", "addopts=", *CUDA_TEST_FILES)
        env = dict(self.env, SEQMOD_ASSIGNMENTS=ASSIGNMENT)

        def attempt(step):
            log = self.scratch / f"{step.replace(' ', '_')}.log"
            return run(commands[step], 300, log, env=env)[0], log

        with ThreadPoolExecutor(len(commands)) as pool:
            outcomes = dict(zip(commands, pool.map(attempt, commands)))
        for step, (code, log) in outcomes.items():
            if step == "cuda tests":
                continue
            text = log.read_text(errors="replace")
            expected = {"gradings": "--gpu-policy", "ssm benchmark": "--json",
                        "ridge benchmark": "--json"}.get(step, "")
            wired(step, "command parses", code == 0 and expected in text,
                  text.strip().splitlines()[0][:100] if code == 0 and text.strip() else f"exit {code}:\n{tail(log)}")
        code, log = outcomes["cuda tests"]
        collected = [line for line in log.read_text().splitlines() if "::" in line]
        own = [line for line in collected if line.startswith("tests/test_cuda.py::")]
        wired("cuda tests", "pytest -m cuda collects tests/test_cuda.py and more", code == 0 and own
              and len(collected) > len(own), f"{len(collected)} tests collected, {len(own)} in tests/test_cuda.py"
              if code == 0 else f"exit {code}:\n{tail(log)}")
        for step in ("notebooks", "gradings"):
            checks.append(Row(step, "measured on a GPU only", "not measured (dry run)", None))
        table = summary(checks, "gpu-check dry run (no CUDA): wiring only, nothing measured")
        print(table)
        return 0 if all(r.met is not False for r in checks) else 1


# -- turning measurements into rows (plain functions: tests feed them records) --------------------
def grading_rows(results, repeats, seconds, code, log_tail=""):
    full = [r for r in results if r.get("total") == r.get("possible") and not r.get("skipped")
            and str(r.get("status", "")).startswith("Completed")]
    measured = f"{len(full)}/{repeats} full marks in {seconds:.0f} s"
    if code is None:
        measured += " (timed out)"
    lost = {}
    for result in results:
        for question in result.get("questions", {}).values():
            for case in question["cases"]:
                if not case.get("passed"):
                    lost.setdefault(case["name"], []).append(case.get("message", "")[:140])
    measured += "".join(f"\n      {name} failed {len(m)}x: {m[0]}" for name, m in sorted(lost.items()))
    if not results:
        measured += "\n" + log_tail
    rows = [Row("gradings", f"{repeats}/{repeats} gradings of the reference give full marks (GPU policy required)",
                measured, len(full) == repeats)]
    times = [r["seconds"] for r in results if isinstance(r.get("seconds"), (int, float))]
    if times:
        rows.append(Row("gradings", "seconds per grading (median, max)",
                        f"{statistics.median(times):.1f}, {max(times):.1f}", True))
    return rows


def _by(rows, **where):
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def ssm_rows(record):
    step, rows = "ssm benchmark", record["rows"]
    cuda_note = "" if record.get("cuda") else " (not on CUDA)"
    out = []

    def ratio(row, a, b):
        return row["ms"][a] / row["ms"][b] if row["ms"].get(a) and row["ms"].get(b) else None

    for H in sorted({r["H"] for r in rows}):
        at_t = _by(rows, H=H, T=SSM_T)
        conv = ratio(at_t[0], "unrolled", "full conv") if at_t else None
        depth = ratio(at_t[0], "full conv", "depthwise") if at_t else None
        out.append(Row(step, f"H={H}: full conv >= {SSM_CONV_SPEEDUP:g}x faster than unrolled at T={SSM_T}",
                       f"{conv:.1f}x{cuda_note}" if conv else "not measured",
                       conv >= SSM_CONV_SPEEDUP if conv else None))
        out.append(Row(step, f"H={H}: depthwise >= {SSM_DEPTHWISE_SPEEDUP:g}x faster than full conv at T={SSM_T}",
                       f"{depth:.1f}x{cuda_note}" if depth else "not measured",
                       depth >= SSM_DEPTHWISE_SPEEDUP if depth else None))
        longest = max((r for r in rows if r["H"] == H), key=lambda r: r["T"])
        factor = longest["ms"]["FFT"] / longest["bw_ms"] if longest["ms"].get("FFT") else None
        out.append(Row(step, f"H={H}: FFT within {SSM_FFT_BW_FACTOR:g}x of the bandwidth time at T={longest['T']}",
                       f"{factor:.1f}x{cuda_note}" if factor else "not measured",
                       factor <= SSM_FFT_BW_FACTOR if factor else None))
    worst = max(r["agree"] for r in rows)
    out.append(Row(step, f"the five methods agree (relative difference <= {AGREE:g})", f"{worst:.1e}", worst <= AGREE))
    return out


def ridge_rows(record):
    step, rows, out = "ridge benchmark", record["rows"], []
    for d in sorted({r["d"] for r in rows}):
        at_n = _by(rows, d=d, n=RIDGE_N)
        speedup = at_n[0]["ms"]["recursion"] / at_n[0]["ms"]["chunked"] if at_n else None
        out.append(Row(step, f"d={d}: chunked >= {RIDGE_CHUNK_SPEEDUP:g}x faster than the recursion at n={RIDGE_N}",
                       f"{speedup:.1f}x" if speedup else "not measured",
                       speedup >= RIDGE_CHUNK_SPEEDUP if speedup else None))
    worst = max(r["err"] for r in rows)
    out.append(Row(step, f"every method within {RIDGE_ERR:g} of the float64 reference", f"{worst:.1e}",
                   worst <= RIDGE_ERR))
    return out


def summary(rows, title) -> str:
    marks = {True: "met", False: "NOT MET", None: "-"}
    width = max([len(r.target) for r in rows] + [6])
    lines = [title, f"{'step':<16} {'target':<{width}}  {'result':<7}  measured", "-" * (width + 60)]
    for r in rows:
        first, *rest = str(r.measured).splitlines() or [""]
        lines.append(f"{r.step:<16} {r.target:<{width}}  {marks[r.met]:<7}  {first}")
        lines.extend(rest)
    met = sum(r.met is True for r in rows)
    judged = sum(r.met is not None for r in rows)
    lines.append(f"{met}/{judged} met")
    return "\n".join(lines)


def run_notebook(path: Path, out: Path):
    """In a child process: execute a notebook in normal mode; record cell errors and output."""
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors, output = [], []
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for index, cell in enumerate(code_cells):
        for item in cell.get("outputs", []):
            if item.get("output_type") == "error":
                errors.append({"cell": index, "error": f"{item.get('ename')}: {item.get('evalue')}"})
            elif item.get("output_type") == "stream":
                output.append(item.get("text", ""))
            elif "text/plain" in item.get("data", {}):  # grader.check results among them
                output.append(item["data"]["text/plain"] + "\n")
    out.write_text(json.dumps({"errors": errors, "output": "".join(output)[-20000:]}))


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="gradings of the reference (default %(default)s)")
    parser.add_argument("--budget", type=float, default=450.0,
                        help="seconds for the whole check; no step starts after it (default %(default)s)")
    parser.add_argument("--wheels", default=str(WHEELS), help="folder of wheels for missing packages")
    parser.add_argument("--dry-run", action="store_true", help="check the wiring only, even with CUDA")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs) and print its path")
    parser.add_argument("--run-notebook", nargs=2, type=Path, metavar=("NOTEBOOK", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_notebook:
        run_notebook(*args.run_notebook)
        return 0
    check = Check(args)
    try:
        if args.dry_run or not cuda_available():
            print("no CUDA GPU here: dry run only (checks that every step is wired; measures nothing)", flush=True)
            return check.dry_run()
        return check.run_all()
    finally:
        if args.keep:
            print(f"logs in {check.scratch}")
        else:
            shutil.rmtree(check.scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
