"""Structure and timing verdicts a notebook cannot quietly forge.

Real notebooks that forge op counts or timings in every way the threat model names are graded
through the real sandbox, next to the same code without the forgery and next to honest
notebooks that use profilers, decorators, classes, nn.Module and torch.compile: each forgery
loses the points it forged and lands on the review list; the honest ones get no flag. The fast
unit tests at the top pin the two counting channels, the refusal of work outside torch and the
growth fit that separates log T from T.
"""
import functools

import nbformat
import pytest
import torch
import torch.nn.functional as F

from autograder import integrity
from autograder.checks.trace import count_ops_locally, grows_like_log
from autograder.grade import grade_all
from autograder.limits import Limits
from tests import notebooks
from tests.mutants import ssm_forward_gpu as gpu_mutants

# -- the counter on its own ----------------------------------------------------------------------

def loop_powers(W, T):
    out = [torch.eye(W.shape[0], dtype=W.dtype)]
    for _ in range(T - 1):
        out.append(out[-1] @ W)
    return torch.stack(out, -1)


def doubling_powers(W, T):
    block, power = torch.eye(W.shape[0], dtype=W.dtype).unsqueeze(0), W
    while block.shape[0] < T:
        block = torch.cat([block, power @ block], dim=0)
        power = power @ power
    return block[:T].permute(1, 2, 0)


def W3():
    return 0.3 * torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_both_channels_agree_on_honest_code_in_every_wrapping():
    class Powers(torch.nn.Module):
        def forward(self, W, T):
            return doubling_powers(W, T)

    @functools.wraps(doubling_powers)
    def wrapped(W, T):
        return doubling_powers(W, T)

    def profiled(W, T):
        with torch.profiler.record_function("student's own label"):
            return doubling_powers(W, T)

    for fn in (doubling_powers, torch.no_grad()(doubling_powers), wrapped, Powers(), profiled,
               torch.compile(doubling_powers)):
        result, counts = count_ops_locally(fn, W3(), 100)
        assert torch.allclose(result, loop_powers(W3(), 100))
        assert counts.voided == "" and counts.outside == "" and counts.notes == []
        assert 0 < counts.matrix_products() <= 3 * 7 + 4


def test_switching_the_dispatch_mode_off_voids_the_count():
    def hidden_loop(W, T):
        with torch.utils._python_dispatch._disable_current_modes():
            return loop_powers(W, T)

    _, counts = count_ops_locally(hidden_loop, W3(), 100)
    assert counts.matrix_products() == 0
    assert "dispatch mode switched off" in counts.voided


def test_stopping_the_profiler_voids_the_count():
    def stop_profiler(W, T):
        torch.autograd._disable_profiler()
        with torch.utils._python_dispatch._disable_current_modes():
            return loop_powers(W, T)

    _, counts = count_ops_locally(stop_profiler, W3(), 100)
    assert counts.voided


def test_numpy_work_is_refused_and_a_token_convolution_is_not_a_convolution():
    def numpy_with_token_conv(W, T):
        F.conv1d(torch.ones(1, 1, 1), torch.ones(1, 1, 1))
        Wn, out = W.numpy(), [torch.eye(W.shape[0], dtype=W.dtype).numpy()]
        for _ in range(T - 1):
            out.append(out[-1] @ Wn)
        import numpy
        return torch.from_numpy(numpy.stack(out, -1))

    result, counts = count_ops_locally(numpy_with_token_conv, W3(), 100)
    assert torch.allclose(result, loop_powers(W3(), 100))
    assert "outside torch" in counts.outside
    assert counts.of({"convolution"}) == 1 and counts.convolutions() == 0  # the output ignores it


def slow_helper(W, T, x=None):
    if x is not None:  # the helper does the checked function's whole job
        return loop_powers(W, T).sum() + x
    return doubling_powers(W, T)


def forward_through_helper(W, T, x):
    return slow_helper(W, T, x)


def honest_forward(W, T, x):
    return slow_helper(W, T).sum() + x


def test_an_excluded_helper_counts_when_it_does_another_job():
    x = torch.tensor(1.0, dtype=torch.float64)
    _, honest = count_ops_locally(honest_forward, W3(), 200, x, exclude_calls_to={"slow_helper": 2})
    _, forged = count_ops_locally(forward_through_helper, W3(), 200, x, exclude_calls_to={"slow_helper": 2})
    assert honest.matrix_products() == 0 and honest.notes == []
    assert forged.matrix_products() == 199 and "3 arguments" in forged.notes[0]


def test_growth_fit_accepts_every_log_scan_and_rejects_loops():
    hillis_steele = {64: 6 * 6 + 4, 512: 9 * 6 + 4, 4096: 12 * 6 + 4}
    blelloch = {64: 6 * 18 + 20, 512: 9 * 18 + 20, 4096: 12 * 18 + 20}  # two sweeps, many ops a round
    loop = {T: 3 * T for T in (64, 512, 4096)}
    chunks = {T: T // 64 + 10 for T in (64, 512, 4096)}
    assert grows_like_log(hillis_steele)[0] and grows_like_log(blelloch)[0]
    assert not grows_like_log(loop)[0] and not grows_like_log(chunks)[0]


def test_static_scan_names_the_line():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\nx = 1  # sys.modules in a comment\nimport sys\nsys.modules['torch'] = None")])
    hits = integrity.scan(nb)
    assert [(h["line"], h["kind"]) for h in hits] == [(4, "sys.modules or gc surgery")]


# -- graded notebooks ----------------------------------------------------------------------------

LOOP_KERNEL = '''
def make_conv_kernel(W, T):
    powers = [torch.eye(W.shape[0], dtype=W.dtype, device=W.device)]
    for _ in range(T - 1):
        powers.append(powers[-1] @ W)
    return torch.stack(powers, dim=-1)
'''
LOOP_FORWARD = '''
def conv_ssm_forward(W, U, b, x):
    return unrolled_ssm_forward(W, U, b, x)
'''
SLOW_CPU = {"make_conv_kernel": LOOP_KERNEL, "conv_ssm_forward": LOOP_FORWARD}

MODE_OFF_CPU = {
    "make_conv_kernel": '''
def make_conv_kernel(W, T):
    from torch.utils._python_dispatch import _disable_current_modes
    with _disable_current_modes():
        powers = [torch.eye(W.shape[0], dtype=W.dtype, device=W.device)]
        for _ in range(T - 1):
            powers.append(powers[-1] @ W)
        return torch.stack(powers, dim=-1)
''', "conv_ssm_forward": '''
def conv_ssm_forward(W, U, b, x):
    from torch.utils._python_dispatch import _disable_current_modes
    with _disable_current_modes():
        out = unrolled_ssm_forward(W, U, b, x)
    return out + 0 * F.conv1d(x[:, :1, :1].transpose(1, 2), torch.ones(1, 1, 1, dtype=x.dtype)).sum()
'''}

PROFILER_OFF_CPU = {
    "make_conv_kernel": '''
def make_conv_kernel(W, T):
    torch.autograd._disable_profiler()
    with torch.utils._python_dispatch._disable_current_modes():
        powers = [torch.eye(W.shape[0], dtype=W.dtype, device=W.device)]
        for _ in range(T - 1):
            powers.append(powers[-1] @ W)
        return torch.stack(powers, dim=-1)
''', "conv_ssm_forward": LOOP_FORWARD}

NUMPY_CPU = {
    "make_conv_kernel": '''
def make_conv_kernel(W, T):
    import numpy as np
    Wn = W.detach().cpu().numpy()
    powers = [np.eye(W.shape[0], dtype=Wn.dtype)]
    for _ in range(T - 1):
        powers.append(powers[-1] @ Wn)
    return torch.from_numpy(np.stack(powers, axis=-1)).to(W.device)
''', "conv_ssm_forward": '''
def conv_ssm_forward(W, U, b, x):
    import numpy as np
    F.conv1d(torch.ones(1, 1, 1, dtype=x.dtype), torch.ones(1, 1, 1, dtype=x.dtype))
    Wn, Un, bn, xn = (v.detach().cpu().numpy() for v in (W, U, b, x))
    h = np.zeros((xn.shape[0], Wn.shape[0]), dtype=xn.dtype)
    out = []
    for t in range(xn.shape[1]):
        h = h @ Wn.T + xn[:, t] @ Un.T + bn
        out.append(h)
    return torch.from_numpy(np.stack(out, axis=1)).to(x.device)
'''}

HELPER_CPU = {
    "make_conv_kernel": '''
def make_conv_kernel(W, T, U=None, b=None, x=None):
    if x is not None:  # the whole forward pass, run where its ops are not counted
        return unrolled_ssm_forward(W, U, b, x)
    H = W.shape[0]
    block = torch.eye(H, dtype=W.dtype, device=W.device).unsqueeze(0)
    power = W
    while block.shape[0] < T:
        block = torch.cat([block, power @ block], dim=0)
        power = power @ power
    return block[:T].permute(1, 2, 0)
''', "conv_ssm_forward": '''
def conv_ssm_forward(W, U, b, x):
    out = make_conv_kernel(W, x.shape[1], U, b, x)
    return out + 0 * F.conv1d(x[:, :1, :1].transpose(1, 2), torch.ones(1, 1, 1, dtype=x.dtype)).sum()
'''}

WRAP_COUNTER = '''
import collections
import autograder.checks.trace as _trace
_real_count = _trace.count_ops_locally
def _forged_count(fn, *args, **kwargs):
    result, counts = _real_count(fn, *args, **kwargs)
    counts.counts = collections.Counter({"mm": 10, "convolution": 1, "add": 3})
    return result, counts
_trace.count_ops_locally = _forged_count
'''
EDIT_COUNTS = '''
import autograder.checks.trace as _trace
_real_to_dict = _trace.OpCounts.to_dict
def _smaller(self):
    data = _real_to_dict(self)
    data["ops"] = {"mm": 10, "convolution": 1, "add": 3}
    return data
_trace.OpCounts.to_dict = _smaller
'''
REPLACE_TIMER = '''
import autograder.checks.trace as _trace
_trace.time_locally = lambda fn, *args, warmup=2, repeats=5, **kwargs: [0.01] * repeats
'''
PATCH_WIRE = '''
import json, wire
_real_frame = wire.frame
def _frame(message, tag=""):
    if isinstance(message.get("counts"), dict):
        message["counts"]["ops"] = {"mm": 10, "convolution": 1, "add": 3}
        message["counts"]["voided"] = ""
    return _real_frame(message, tag)
wire.frame = _frame
_real_dumps = json.dumps
def _dumps(message, *args, **kwargs):
    if isinstance(message, dict) and isinstance(message.get("counts"), dict):
        message["counts"]["ops"] = {"mm": 10, "convolution": 1, "add": 3}
        message["counts"]["voided"] = ""
    return _real_dumps(message, *args, **kwargs)
json.dumps = _dumps
'''

HONEST_CELLS = {  # legitimate uses of what the measurement relies on: no flag
    "profiler_no_grad_wraps_module_compile": '''
import functools
import torch.profiler
with torch.profiler.profile() as _prof:
    _ = torch.ones(3) @ torch.ones(3)
_table = _prof.key_averages().table(row_limit=3)

def _logged(fn):
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        return fn(*args, **kwargs)
    return inner

class _Doubler(torch.nn.Module):
    def forward(self, W, T):
        H = W.shape[0]
        block = torch.eye(H, dtype=W.dtype, device=W.device).unsqueeze(0)
        power = W
        while block.shape[0] < T:
            block = torch.cat([block, power @ block], dim=0)
            power = power @ power
        return block[:T].permute(1, 2, 0)

_doubler = _Doubler()
make_conv_kernel = _logged(torch.no_grad()(lambda W, T: _doubler(W, T)))
_compiled_forward = torch.compile(conv_ssm_forward)  # compiled on first use; not used here (slow to build)
_plain_forward = conv_ssm_forward
conv_ssm_forward = _logged(lambda W, U, b, x: _plain_forward(W, U, b, x))
''',
}

STRUCTURE_CPU = {"test_kernel_doubling", "test_conv_no_time_loop"}


def cpu_notebooks():
    """{label: (notebook, forged)}: honest and forged, all for one batch."""
    ref = "ssm_forward_cpu"

    def slow():
        return notebooks.with_replacements(ref, SLOW_CPU)

    return {
        "reference": (notebooks.reference_notebook(ref), False),
        "honest_slow": (slow(), False),
        "honest_uses": (notebooks.append_cells(notebooks.reference_notebook(ref),
                                               HONEST_CELLS["profiler_no_grad_wraps_module_compile"]), False),
        "wrap_counter": (notebooks.append_cells(slow(), WRAP_COUNTER), True),
        "edit_counts": (notebooks.append_cells(slow(), EDIT_COUNTS), True),
        "replace_timer": (notebooks.append_cells(slow(), REPLACE_TIMER), True),
        "patch_wire": (notebooks.append_cells(slow(), PATCH_WIRE), True),
        "mode_off": (notebooks.with_replacements(ref, MODE_OFF_CPU), True),
        "profiler_off": (notebooks.with_replacements(ref, PROFILER_OFF_CPU), True),
        "numpy_token_conv": (notebooks.with_replacements(ref, NUMPY_CPU), True),
        "helper_loop": (notebooks.with_replacements(ref, HELPER_CPU), True),
        "honest_forward_loop": (notebooks.with_replacements(ref, {"conv_ssm_forward": LOOP_FORWARD}), False),
    }


# The same code without the forgery, where it is not `honest_slow`.
BASELINE = {"helper_loop": "honest_forward_loop"}


LOOP_SCAN = '''
def scan_ssm_forward(a, u):
    h, out = torch.zeros_like(u[:, 0]), []
    for t in range(u.shape[1]):
        h = a[:, t] * h + u[:, t]
        out.append(h)
    return torch.stack(out, dim=1)
'''
BLELLOCH_SCAN = next(v for v in gpu_mutants.VARIANTS if v.name == "blelloch_scan").replace["scan_ssm_forward"]
MODE_OFF_SCAN = '''
def scan_ssm_forward(a, u):
    with torch.utils._python_dispatch._disable_current_modes():
        h, out = torch.zeros_like(u[:, 0]), []
        for t in range(u.shape[1]):
            h = a[:, t] * h + u[:, t]
            out.append(h)
        return torch.stack(out, dim=1)
'''
NUMPY_SCAN = '''
def scan_ssm_forward(a, u):
    import numpy as np
    an, un = a.detach().cpu().numpy(), u.detach().cpu().numpy()
    h, out = np.zeros_like(un[:, 0]), []
    for t in range(un.shape[1]):
        h = an[:, t] * h + un[:, t]
        out.append(h)
    return torch.from_numpy(np.stack(out, axis=1)).to(u.device)
'''
TIMER_READS_WORKLOAD = '''
def cuda_time(fn, *args, warmup=3, repeats=10):
    for _ in range(warmup + repeats):
        fn(*args)
    return float(fn.params["ms"])  # the answer, read from what the grader handed over
'''


def gpu_notebooks():
    ref = "ssm_forward_gpu"

    def slow():
        return notebooks.with_replacements(ref, {"scan_ssm_forward": LOOP_SCAN})

    return {
        "reference": (notebooks.reference_notebook(ref), False),
        "blelloch": (notebooks.with_replacements(ref, {"scan_ssm_forward": BLELLOCH_SCAN}), False),
        "honest_slow": (slow(), False),
        "wrap_counter": (notebooks.append_cells(slow(), WRAP_COUNTER), True),
        "mode_off": (notebooks.with_replacements(ref, {"scan_ssm_forward": MODE_OFF_SCAN}), True),
        "numpy_loop": (notebooks.with_replacements(ref, {"scan_ssm_forward": NUMPY_SCAN}), False),
        "timer_reads_workload": (notebooks.with_replacements(ref, {"cuda_time": TIMER_READS_WORKLOAD}), False),
    }


def failed(result) -> set:
    return {c["name"] for q in result["questions"].values() for c in q["cases"]
            if not c["passed"] and not c.get("skipped")}


def explain(result):
    lines = [f"{result['file']}: {result['total']}/{result['possible']} ({result['status']})",
             f"integrity: {result.get('integrity')}"]
    lines += [f"  {c['name']}: {c['message'][:300]}" for q in result["questions"].values()
              for c in q["cases"] if not c["passed"]]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Both assignments' notebooks, one batch each; plus one forgery regraded after a TA
    accepted its review."""
    folder = tmp_path_factory.mktemp("integrity")
    results = {}
    for assignment, made in (("ssm_forward_cpu", cpu_notebooks()), ("ssm_forward_gpu", gpu_notebooks())):
        for label, (nb, _) in made.items():
            notebooks.write(nb, folder / assignment / f"{label}.ipynb")
        rows = grade_all(assignment, [folder / assignment], folder / f"{assignment}_out",
                         limits=Limits(timeout_s=300), force=True)
        results[assignment] = {r["file"].removesuffix(".ipynb"): (r, made[r["file"].removesuffix(".ipynb")][1])
                               for r in rows}
    accepted = folder / "ssm_forward_cpu" / "mode_off.ipynb"
    rows = grade_all("ssm_forward_cpu", [accepted], folder / "accepted_out", limits=Limits(timeout_s=300),
                     force=True, accept_review=[accepted])
    results["accepted"] = rows[0]
    results["summary"] = (folder / "ssm_forward_cpu_out" / "summary.md").read_text()
    return results


@pytest.mark.parametrize("assignment", ["ssm_forward_cpu", "ssm_forward_gpu"])
def test_forgeries_lose_what_they_forged_and_are_reviewed(graded, assignment):
    rows = graded[assignment]
    for label, (result, forged) in rows.items():
        if not forged:
            continue
        baseline, _ = rows[BASELINE.get(label, "honest_slow")]
        assert result["integrity"]["review"], explain(result)
        assert result["total"] <= baseline["total"], explain(result) + "\n" + explain(baseline)
        assert failed(baseline) <= failed(result), explain(result)


def test_the_same_code_without_the_forgery_loses_only_its_structure_points(graded):
    cpu, _ = graded["ssm_forward_cpu"]["honest_slow"]
    assert not cpu["integrity"]["review"], explain(cpu)
    assert failed(cpu) == STRUCTURE_CPU, explain(cpu)
    forward_only, _ = graded["ssm_forward_cpu"]["honest_forward_loop"]
    assert not forward_only["integrity"]["review"], explain(forward_only)
    assert failed(forward_only) == {"test_conv_no_time_loop"}, explain(forward_only)
    gpu, _ = graded["ssm_forward_gpu"]["honest_slow"]
    assert not gpu["integrity"]["review"], explain(gpu)
    assert len(failed(gpu)) == 1 and "scan" in failed(gpu).pop(), explain(gpu)


@pytest.mark.parametrize("assignment", ["ssm_forward_cpu", "ssm_forward_gpu"])
def test_honest_notebooks_get_full_marks_and_no_flag(graded, assignment):
    for label in ("reference", "blelloch", "honest_uses"):
        if label in graded[assignment]:
            result, _ = graded[assignment][label]
            assert not result["integrity"]["review"], explain(result)
            assert result["total"] == result["possible"], explain(result)


def test_numpy_work_fails_the_structure_test_with_a_clear_message(graded):
    result, _ = graded["ssm_forward_gpu"]["numpy_loop"]
    assert "test_scan_log_rounds" in failed(result), explain(result)
    assert any("write this with torch operations" in c["message"] for q in result["questions"].values()
               for c in q["cases"]), explain(result)


def test_a_timer_cannot_read_the_answer_from_its_workload(graded):
    result, _ = graded["ssm_forward_gpu"]["timer_reads_workload"]
    assert "test_warmup_and_repeats" in failed(result) and "test_times_cpu_work" in failed(result), explain(result)


def test_voided_measurements_show_in_status_feedback_and_summary(graded):
    result, _ = graded["ssm_forward_cpu"]["mode_off"]
    assert result["status"].startswith("integrity review: ")
    assert result["integrity"]["voided"] and all(v["test"] for v in result["integrity"]["voided"])
    review = graded["summary"].split("## Integrity review")[1].split("\n## ")[0]
    for label, (row, forged) in graded["ssm_forward_cpu"].items():
        assert (f"- {row['file']} (" in review) == forged, label
    assert "_disable_current_modes" in review  # the line of code, as evidence


def test_an_accepted_review_is_regraded_with_the_measurement_trusted(graded):
    result = graded["accepted"]
    assert result["integrity"]["accepted"] and not result["integrity"]["voided"]
    assert not result["status"].startswith("integrity review")
    assert "integrity review accepted" in result["status"]
