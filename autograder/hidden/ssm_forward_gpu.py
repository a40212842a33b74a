"""Hidden checks for the GPU SSM assignment.

- The three CPU functions: the CPU assignment's hidden checks, unchanged (CPU tensors).
- New functions: fresh inputs against float64 references, and structure by op counts.
- On a CUDA machine: the same numerics on CUDA tensors, and fresh timing comparisons. Without
  CUDA these return at once through `if not require_cuda(): return` (the course grader reports
  them as not run; `core.require_cuda` applies the GPU points policy).
"""
import statistics
import time

import torch

from ..checks.core import (
    FLOAT_DTYPES,
    CheckFailure,
    StudentCodeError,
    as_float,
    call,
    dtype_name,
    expect,
    expect_close,
    expect_device,
    fail,
    fresh_generator,
    require_cuda,
    tolerance,
)
from ..checks.ssm_forward_gpu import random_diagonal_system, random_scan_inputs
from ..checks.trace import CONVOLUTION_OPS, grows_like_log, timed_call, traced_call
from ..checks.workloads import Clock, Workload
from ..references import ssm_forward_cpu as cpu_ref
from ..references import ssm_forward_gpu as ref
from . import ssm_forward_cpu as cpu

# Float32 results computed on a GPU are compared with a relative tolerance of 1e-2 of the output's
# largest entry. Why: matmuls and convolutions may run in TF32 (the notebook turns it off, but a
# student may turn it on, and cuDNN enables it by default), which rounds each operand to 10
# mantissa bits, a relative error of up to 2^-11 (about 4.9e-4) per operand. Simulating that
# rounding in every product of the unrolled loop, of the doubling kernel build and of the
# convolution, on the well-conditioned systems used below (normal W, spectral radius <= 0.9),
# gave errors of at most 2e-3 of the output's scale over 1,800 random cases: 1e-2 leaves a factor
# of 5. The mistakes these checks name change the output by O(1), and exact correctness is pinned
# by the float64 runs (on the CPU and on the GPU, tolerance 1e-9), which TF32 does not touch.
CUDA_FLOAT32_RTOL = 1e-2
CUDA_SHAPES = [(2, 7, 3, 4), (1, 1, 2, 3), (3, 12, 1, 1), (1, 33, 4, 5), (2, 64, 3, 8)]
DIAG_SHAPES = [(2, 7, 3, 4), (1, 1, 2, 3), (3, 12, 1, 1), (1, 33, 4, 5), (2, 20, 2, 2), (1, 50, 2, 6)]
SCAN_SHAPES = [(2, 7, 3), (1, 1, 4), (3, 16, 1), (1, 33, 5), (2, 100, 2), (1, 300, 3)]


def _rtol(dtype, cuda):
    return CUDA_FLOAT32_RTOL if cuda and dtype == torch.float32 else tolerance(dtype)


def _where(text, dtype, cuda):
    return f"{text}, {dtype_name(dtype)}" + (" on CUDA" if cuda else "")


def _to(tensors, dtype, cuda):
    return tuple(t.to(dtype).to("cuda" if cuda else "cpu") for t in tensors)


def well_conditioned_system(gen, N, T, D, H):
    """W = Q diag(lam) Q^T with |lam| <= 0.9 (normal: no transient growth), float64 on the CPU."""
    Q, _ = torch.linalg.qr(torch.randn(H, H, generator=gen, dtype=torch.float64))
    lam = torch.rand(H, generator=gen, dtype=torch.float64) * 1.8 - 0.9
    W = Q @ torch.diag(lam) @ Q.T
    U = torch.randn(H, D, generator=gen, dtype=torch.float64)
    b = torch.randn(H, generator=gen, dtype=torch.float64)
    x = torch.randn(N, T, D, generator=gen, dtype=torch.float64)
    return W, U, b, x


# -- q1-q3: the CPU assignment's functions ------------------------------------------------------

unrolled_matches_reference = cpu.unrolled_matches_reference
conv_kernel_matches_reference = cpu.conv_kernel_matches_reference
conv_kernel_uses_doubling = cpu.conv_kernel_uses_doubling
conv_matches_reference = cpu.conv_matches_reference
conv_forward_has_no_time_loop = cpu.conv_forward_has_no_time_loop


def _full_forward_on_cuda(fn, name):
    if not require_cuda("it runs your function on CUDA tensors"):
        return
    gen = fresh_generator()
    for N, T, D, H in CUDA_SHAPES:
        params = well_conditioned_system(gen, N, T, D, H)
        reference, mistakes = cpu_ref.forward(*params), (lambda p=params: cpu_ref.forward_mistakes(*p))
        for dtype in FLOAT_DTYPES:
            where = _where(f"N={N}, T={T}, D={D}, H={H}", dtype, True)
            got = call(fn, name, *_to(params, dtype, True), where=where)
            expect_device(got, "cuda", name)
            expect_close(got, reference, name, dims="N T H", input_dtype=dtype, rtol=_rtol(dtype, True),
                         mistakes=mistakes, where=where)


def unrolled_on_cuda(unrolled_ssm_forward):
    """`unrolled_ssm_forward` is right on CUDA tensors (needs a GPU)."""
    _full_forward_on_cuda(unrolled_ssm_forward, "unrolled_ssm_forward")


def conv_on_cuda(conv_ssm_forward):
    """`conv_ssm_forward` is right on CUDA tensors (needs a GPU)."""
    _full_forward_on_cuda(conv_ssm_forward, "conv_ssm_forward")


def conv_kernel_on_cuda(make_conv_kernel):
    """`make_conv_kernel` is right on CUDA tensors (needs a GPU)."""
    if not require_cuda("it runs your function on CUDA tensors"):
        return
    gen = fresh_generator()
    for H, T in [(3, 1), (2, 2), (4, 5), (3, 16), (5, 37)]:
        W, *_ = well_conditioned_system(gen, 1, 1, 1, H)
        for dtype in FLOAT_DTYPES:
            got = call(make_conv_kernel, "make_conv_kernel", *_to((W,), dtype, True), T,
                       where=_where(f"H={H}, T={T}", dtype, True))
            expect_device(got, "cuda", "make_conv_kernel")
            expect_close(got, cpu_ref.powers(W, T), "make_conv_kernel", dims="H H T", input_dtype=dtype,
                         rtol=_rtol(dtype, True), mistakes=lambda: cpu_ref.kernel_mistakes(W, T),
                         where=_where(f"H={H}, T={T}", dtype, True))


# -- timing on CUDA: fresh measurements, wide margins, retried so that they never flake ---------

def _median_ms(fn, name, args):
    try:
        times = timed_call(fn, *args, warmup=2, repeats=5)
    except StudentCodeError as error:
        fail(f"`{name}` raised an error while being timed on CUDA: {error}")
    expect(len(times) > 0, f"`{name}` could not be timed.")
    return statistics.median(times)


def _expect_faster(fast, fast_name, fast_args, slow, slow_name, slow_args, factor, where, attempts=3):
    """`fast` must take at most 1/factor of `slow`'s median time in one of `attempts` fresh rounds.

    The sizes are chosen so that the expected ratio is far above `factor` (see the callers); the
    retries only absorb a rare disturbance (another process on the GPU, a clock change)."""
    rounds = []
    for _ in range(attempts):
        t_fast = _median_ms(fast, fast_name, fast_args)
        t_slow = _median_ms(slow, slow_name, slow_args)
        rounds.append((t_fast, t_slow))
        if t_fast * factor <= t_slow:
            return
    t_fast, t_slow = min(rounds, key=lambda r: r[0] / max(r[1], 1e-9))
    fail(f"`{fast_name}` should be at least {factor}x faster than `{slow_name}` on CUDA ({where}); "
         f"in {attempts} fresh measurements the best was {t_fast:.3g} ms against {t_slow:.3g} ms.")


def _expect_right_on_cuda(fn, name, args, reference, where):
    """Speed earns points only for a function whose result is right (a constant is fast too)."""
    got = call(fn, name, *args, where=where)
    expect_device(got, "cuda", name)
    expect_close(got, reference, name, dims="N T H", input_dtype=torch.float32, rtol=CUDA_FLOAT32_RTOL,
                 where=where + ", before timing")


def conv_beats_unrolled_on_cuda(conv_ssm_forward, unrolled_ssm_forward):
    """T = 1024 steps of a few tiny kernels each (launch-bound: tens of ms) against a kernel build
    of ~10 rounds and one convolution of ~1 GFLOP (well under a few ms): expected ratio >= 10."""
    if not require_cuda("it times your functions on a GPU"):
        return
    gen = fresh_generator()
    N, T, D, H = 4, 1024, 4, 16
    system = well_conditioned_system(gen, N, T, D, H)
    params = _to(system, torch.float32, True)
    where = f"N={N}, T={T}, H={H}, float32"
    _expect_right_on_cuda(conv_ssm_forward, "conv_ssm_forward", params, cpu_ref.forward(*system), where)
    _expect_faster(conv_ssm_forward, "conv_ssm_forward", params, unrolled_ssm_forward,
                   "unrolled_ssm_forward", params, 2, where)


def diag_beats_full_conv_on_cuda(diag_conv_ssm_forward, conv_ssm_forward):
    """H = 1024: the full path builds a (1024, 1024, 128) kernel (~130 GFLOP of products) and runs
    a ~70 GFLOP convolution; the depthwise path does ~0.07 GFLOP in a few launches. Expected ratio
    well above 10; we ask for 2."""
    if not require_cuda("it times your functions on a GPU"):
        return
    gen = fresh_generator()
    N, T, D, H = 2, 128, 4, 1024
    w, U, b, x = random_diagonal_system(gen, N, T, D, H)
    diag_args = _to((w, U, b, x), torch.float32, True)
    full_args = _to((torch.diag(w), U, b, x), torch.float32, True)
    where = f"N={N}, T={T}, H={H}, W = diag(w), float32"
    _expect_right_on_cuda(diag_conv_ssm_forward, "diag_conv_ssm_forward", diag_args,
                          ref.diagonal_forward(w, U, b, x), where)
    _expect_faster(diag_conv_ssm_forward, "diag_conv_ssm_forward", diag_args, conv_ssm_forward,
                   "conv_ssm_forward", full_args, 2, where)


# -- q4: cuda_time ------------------------------------------------------------------------------

def _timer_call(cuda_time, ms, warmup, repeats):
    started = time.perf_counter()
    # A clock paced by the grader: nothing handed to the timer says how long a call takes.
    value = as_float(call(cuda_time, "cuda_time", Clock(ms), warmup=warmup,
                          repeats=repeats), "cuda_time")
    return value, (time.perf_counter() - started) * 1e3


def _retry(check, attempts=2):
    """Run a wall-clock check again when it fails: a systematic mistake fails every attempt, a rare
    stall of a busy grading machine does not fail a correct timer."""
    for attempt in range(attempts):
        try:
            return check()
        except CheckFailure:
            if attempt == attempts - 1:
                raise


def cuda_time_uses_warmup_and_repeats(cuda_time):
    """warmup untimed calls plus repeats timed calls, no more and no fewer (measured in wall time
    around the call, with generous slack); the median of a constant workload is that constant."""
    gen = fresh_generator()
    ms = 15 + 10 * float(torch.rand(1, generator=gen))
    warmup = 1 + int(torch.randint(0, 3, (1,), generator=gen))
    repeats = 3 + int(torch.randint(0, 3, (1,), generator=gen))

    def counts_calls():
        value, elapsed = _timer_call(cuda_time, ms, warmup, repeats)
        if 0.5 * ms / 1e3 <= value <= 2 * ms / 1e3:
            fail(f"`cuda_time` returned {value:.3g} for a call of about {ms:.0f} ms: it should return "
                 "milliseconds, not seconds.")
        expect(0.8 * ms <= value <= 1.5 * ms + 5,
               f"`cuda_time` returned {value:.3g} ms for a function that takes {ms:.0f} ms per call.")
        calls = warmup + repeats
        expect(elapsed >= 0.9 * calls * ms,
               f"`cuda_time(fn, warmup={warmup}, repeats={repeats})` returned after {elapsed:.0f} ms, but "
               f"{calls} calls of a {ms:.0f} ms function take at least {calls * ms:.0f} ms: call fn `warmup` "
               "times untimed, then `repeats` times timed.")

    def no_extra_calls():
        slow, warmup, repeats = 40.0, 0, 2
        _, elapsed = _timer_call(cuda_time, slow, warmup, repeats)
        limit = (warmup + repeats + 1) * (slow + 5) + 150
        expect(elapsed <= limit,
               f"`cuda_time(fn, warmup=0, repeats=2)` took {elapsed:.0f} ms for a {slow:.0f} ms function: far "
               "more than 2 calls. Use the `warmup` and `repeats` arguments instead of fixed counts.")

    _retry(counts_calls)
    _retry(no_extra_calls)


def _event_median_ms(fn, warmup=2, repeats=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _timer_measures_cpu_work(cuda_time):
    """First the timer must be right on a plain CPU workload of a fresh length (a timer that
    returns a constant could otherwise land near the GPU kernel's time)."""
    gen = fresh_generator()
    ms = 12 + 8 * float(torch.rand(1, generator=gen))
    warmup, repeats = 1, 3

    def check():
        value, elapsed = _timer_call(cuda_time, ms, warmup, repeats)
        expect(0.8 * ms <= value <= 1.5 * ms + 5,
               f"`cuda_time` returned {value:.3g} ms for a function that takes {ms:.0f} ms per call on the CPU "
               "(expected about that: the median of the timed calls, in milliseconds).")
        expect(elapsed >= 0.9 * (warmup + repeats) * ms,
               f"`cuda_time(fn, warmup={warmup}, repeats={repeats})` returned after {elapsed:.0f} ms, but "
               f"{warmup + repeats} calls of a {ms:.0f} ms function take at least {(warmup + repeats) * ms:.0f} ms.")

    _retry(check)


def cuda_time_matches_event_timer(cuda_time):
    """A kernel that keeps the GPU busy for a fixed number of cycles (~10 ms on current GPUs) and
    returns at once on the host: a timer without synchronisation reports ~0.01 ms."""
    if not require_cuda("it times an asynchronous GPU kernel"):
        return
    _timer_measures_cpu_work(cuda_time)
    work = Workload("gpu_sleep", cycles=20_000_000)
    reference = _event_median_ms(work)
    value = as_float(call(cuda_time, "cuda_time", work, warmup=2, repeats=5), "cuda_time")
    if value < 0.5 * reference:
        fail(f"`cuda_time` reported {value:.3g} ms for a GPU kernel that runs for about {reference:.3g} ms: "
             "it measured the launch, not the work. CUDA calls return before the GPU has finished; call "
             "torch.cuda.synchronize() before reading the clock, or time with CUDA events.")
    expect(value <= 2 * reference + 1,
           f"`cuda_time` reported {value:.3g} ms for a GPU kernel that runs for about {reference:.3g} ms.")


# -- q6: the diagonal kernel --------------------------------------------------------------------

def _diag_kernel_matches(make_diag_conv_kernel, cuda):
    gen = fresh_generator()
    for H, T in [(3, 1), (2, 2), (4, 5), (3, 16), (2, 37)]:
        w, *_ = random_diagonal_system(gen, 1, 1, 1, H)
        if H > 2:
            w[1] = 0.0  # 0^0 = 1
        for dtype in FLOAT_DTYPES:
            got = call(make_diag_conv_kernel, "make_diag_conv_kernel", *_to((w,), dtype, cuda), T,
                       where=_where(f"H={H}, T={T}", dtype, cuda))
            if cuda:
                expect_device(got, "cuda", "make_diag_conv_kernel")
            expect_close(got, ref.diag_kernel(w, T), "make_diag_conv_kernel", dims="H 1 T",
                         input_dtype=dtype, rtol=_rtol(dtype, cuda), mistakes=ref.diag_kernel_mistakes(w, T),
                         where=_where(f"H={H}, T={T}", dtype, cuda))


def diag_kernel_matches_reference(make_diag_conv_kernel):
    """`make_diag_conv_kernel` matches the reference on fresh CPU inputs."""
    _diag_kernel_matches(make_diag_conv_kernel, cuda=False)


def diag_kernel_on_cuda(make_diag_conv_kernel):
    """`make_diag_conv_kernel` is right on CUDA tensors (needs a GPU)."""
    if not require_cuda("it runs your function on CUDA tensors"):
        return
    _diag_kernel_matches(make_diag_conv_kernel, cuda=True)


# -- q7, q8: the diagonal forward passes (depthwise, FFT) ----------------------------------------

def _diagonal_forward_matches(fn, name, cuda, shapes=DIAG_SHAPES):
    gen = fresh_generator()
    for N, T, D, H in shapes:
        params = random_diagonal_system(gen, N, T, D, H)
        params[0][0] = 0.97  # one channel with a long memory
        reference, mistakes = ref.diagonal_forward(*params), ref.diagonal_forward_mistakes(*params)
        for dtype in FLOAT_DTYPES:
            where = _where(f"N={N}, T={T}, D={D}, H={H}", dtype, cuda)
            got = call(fn, name, *_to(params, dtype, cuda), where=where)
            if cuda:
                expect_device(got, "cuda", name)
            expect_close(got, reference, name, dims="N T H", input_dtype=dtype, rtol=_rtol(dtype, cuda),
                         mistakes=mistakes, where=where)


def diag_conv_matches_reference(diag_conv_ssm_forward):
    """`diag_conv_ssm_forward` matches the reference on fresh CPU inputs."""
    _diagonal_forward_matches(diag_conv_ssm_forward, "diag_conv_ssm_forward", cuda=False)


def diag_conv_on_cuda(diag_conv_ssm_forward):
    """`diag_conv_ssm_forward` is right on CUDA tensors (needs a GPU)."""
    if not require_cuda("it runs your function on CUDA tensors"):
        return
    _diagonal_forward_matches(diag_conv_ssm_forward, "diag_conv_ssm_forward", cuda=True, shapes=CUDA_SHAPES)


def depthwise_is_one_grouped_convolution(diag_conv_ssm_forward):
    """Exactly one convolution at H = 8 (not 0, not one per channel); and, on a CPU grader, H = 8192,
    where a depthwise kernel is 1.5 MB but a full (H, H, T) kernel would be 13 GB: more than the
    sandbox's address-space limit, so a full-kernel solution fails there. (On a GPU grader that
    limit is not applied; the timing check `diag_beats_full_conv_on_cuda` covers that case.)"""
    name = "diag_conv_ssm_forward"
    gen = fresh_generator()
    H, T = 8, 24
    params = random_diagonal_system(gen, 2, T, 3, H)
    got, counts = traced_call(diag_conv_ssm_forward, *params, exclude_calls_to={"make_diag_conv_kernel": 2})
    expect_close(got, ref.diagonal_forward(*params), name, dims="N T H", where=f"H={H}, T={T}")
    n = counts.convolutions()
    if n == 0:
        fail(f"`{name}` ran no convolution: use F.conv1d (or nn.Conv1d) with groups=H and the kernel "
             f"from make_diag_conv_kernel ({counts.summary()}).")
    if n >= H:
        fail(f"`{name}` ran {n} convolutions for H = {H} channels, one per channel: a single grouped "
             "convolution (groups=H) convolves every channel with its own kernel in one call.")
    expect(n == 1, f"`{name}` ran {n} convolutions; one grouped convolution (groups=H) does it all.")
    if torch.cuda.is_available():
        return
    H, T = 8192, 48
    params = random_diagonal_system(gen, 1, T, 2, H, dtype=torch.float32)
    try:
        got = call(diag_conv_ssm_forward, name, *params)
    except CheckFailure as failure:
        fail(f"{failure} (inputs: H={H}, T={T}, float32). Here a depthwise kernel (H, 1, T) takes "
             f"{H * T * 4 / 2**20:.1f} MB, but a full (H, H, T) kernel, or diag(w) pushed through "
             f"make_conv_kernel, would take {H * H * T * 4 / 2**30:.0f} GB: build only the H diagonal "
             "kernels and convolve with groups=H.")
    expect_close(got, ref.diagonal_forward(*params), name, dims="N T H", input_dtype=torch.float32,
                 where=f"N=1, T={T}, H={H}, float32")


def fft_matches_reference(fft_ssm_forward):
    """`fft_ssm_forward` matches the reference on fresh CPU inputs."""
    _diagonal_forward_matches(fft_ssm_forward, "fft_ssm_forward", cuda=False)


def fft_on_cuda(fft_ssm_forward):
    """`fft_ssm_forward` is right on CUDA tensors (needs a GPU)."""
    if not require_cuda("it runs your function on CUDA tensors"):
        return
    _diagonal_forward_matches(fft_ssm_forward, "fft_ssm_forward", cuda=True, shapes=CUDA_SHAPES)


def fft_has_no_time_loop(fft_ssm_forward):
    """At least a forward and an inverse FFT, no convolution, and an op count that does not grow
    with T (room for a kernel built inline by doubling)."""
    name = "fft_ssm_forward"
    gen = fresh_generator()
    counts = {}
    for T in (40, 320, 2560):
        params = random_diagonal_system(gen, 2, T, 2, 3)
        got, counts[T] = traced_call(fft_ssm_forward, *params, exclude_calls_to={"make_diag_conv_kernel": 2})
        expect_close(got, ref.diagonal_forward(*params), name, dims="N T H",
                     mistakes=ref.diagonal_forward_mistakes(*params) if T == 40 else None, where=f"T={T}")
    c = counts[2560]
    expect(c.ffts() >= 2, f"`{name}` ran {c.ffts()} FFT(s) its result depends on: transform the inputs and the "
                          "kernel, multiply, and transform back (torch.fft.rfft / torch.fft.irfft) "
                          f"({c.summary()}).")
    expect(c.of(CONVOLUTION_OPS) == 0, f"`{name}` ran a convolution: this forward pass should use the FFT instead.")
    ok, seen = grows_like_log({T: n.compute() for T, n in counts.items()}, per_round=8)
    expect(ok, f"`{name}` loops over time ({seen}; room is left for a kernel built inline by doubling). "
               "The FFT handles every time step at once.")


# -- q9: the scan --------------------------------------------------------------------------------

def _scan_matches(scan_ssm_forward, cuda, shapes=SCAN_SHAPES):
    gen = fresh_generator()
    for i, (N, T, H) in enumerate(shapes):
        a, u = random_scan_inputs(gen, N, T, H)
        if i == 3:
            a[:, T // 2] = 0.0  # a reset: the state forgets everything before this step
        reference, mistakes = cpu_ref.scan(a, u), ref.scan_mistakes(a, u)
        for dtype in FLOAT_DTYPES:
            where = _where(f"N={N}, T={T}, H={H}" + (", some a_t = 0" if i == 3 else ""), dtype, cuda)
            got = call(scan_ssm_forward, "scan_ssm_forward", *_to((a, u), dtype, cuda), where=where)
            if cuda:
                expect_device(got, "cuda", "scan_ssm_forward")
            expect_close(got, reference, "scan_ssm_forward", dims="N T H", input_dtype=dtype,
                         rtol=_rtol(dtype, cuda), mistakes=mistakes, where=where)


def scan_matches_reference(scan_ssm_forward):
    """`scan_ssm_forward` matches the reference on fresh CPU inputs."""
    _scan_matches(scan_ssm_forward, cuda=False)


def scan_on_cuda(scan_ssm_forward):
    """`scan_ssm_forward` is right on CUDA tensors (needs a GPU)."""
    if not require_cuda("it runs your function on CUDA tensors"):
        return
    _scan_matches(scan_ssm_forward, cuda=True)


def scan_takes_log_rounds(scan_ssm_forward):
    """Sequential rounds, counted at T = 64, 512 and 4096: a parallel scan (Hillis-Steele, or
    Blelloch's up and down sweeps) adds a few ops per doubling of T, the same at every size; a loop
    over time adds thousands, and more at each size."""
    name = "scan_ssm_forward"
    gen = fresh_generator()
    counts = {}
    for T in (64, 512, 4096):
        a, u = random_scan_inputs(gen, 1, T, 2)
        got, counts[T] = traced_call(scan_ssm_forward, a, u)
        expect_close(got, cpu_ref.scan(a, u), name, dims="N T H", where=f"T={T}")
    ok, seen = grows_like_log({T: c.compute() for T, c in counts.items()})
    expect(ok, f"`{name}` does not run in about log2(T) rounds ({seen}): it loops over time. A parallel "
               "scan combines each position with the one 1, 2, 4, ... steps back (or sweeps a tree up and "
               "down), so each doubling of T adds one round of a few whole-tensor ops.")
