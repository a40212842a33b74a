"""Public checks for the GPU SSM assignment: definitions any correct answer satisfies.

The CPU assignment's checks are reused for the three functions that come back here. The new
checks test the diagonal kernel, the diagonal forward passes and the scan against their defining
recurrences (on the student's own outputs), and the timer against a known CPU workload.
"""
import time

import torch

from .core import CheckFailure, as_float, as_tensor, call, expect, expect_shape, fail, fresh_generator, tolerance
from .ssm_common import check_agreement, check_recurrence
from .ssm_forward_cpu import conv_agrees_with_unrolled, conv_kernel_is_powers_of_W, unrolled_follows_recurrence
from .trace import expect_countable
from .workloads import Clock

__all__ = [
    "unrolled_follows_recurrence", "conv_kernel_is_powers_of_W", "conv_agrees_with_unrolled",
    "cuda_time_measures_cpu_work", "diag_kernel_is_powers_of_w", "diag_conv_agrees_with_unrolled",
    "fft_follows_recurrence", "scan_follows_recurrence", "random_diagonal_system", "random_scan_inputs",
]


def random_diagonal_system(gen, N, T, D, H, dtype=torch.float64, radius=0.95):
    """w (H,) with entries in (-radius, radius), and U, b, x as in `random_system`."""
    w = (torch.rand(H, generator=gen, dtype=torch.float64) * 2 - 1) * radius
    U = torch.randn(H, D, generator=gen, dtype=torch.float64)
    b = torch.randn(H, generator=gen, dtype=torch.float64)
    x = torch.randn(N, T, D, generator=gen, dtype=torch.float64)
    return tuple(t.to(dtype) for t in (w, U, b, x))


def random_scan_inputs(gen, N, T, H, dtype=torch.float64):
    """a in (-1, 1) (half of the channels close to 1: long memory) and u standard normal."""
    a = torch.rand(N, T, H, generator=gen, dtype=torch.float64) * 2 - 1
    slow = torch.rand(N, T, H, generator=gen, dtype=torch.float64) * 0.1 + 0.9
    a[..., ::2] = slow[..., ::2]
    u = torch.randn(N, T, H, generator=gen, dtype=torch.float64)
    return a.to(dtype), u.to(dtype)


# -- cuda_time ---------------------------------------------------------------------------------

def cuda_time_measures_cpu_work(cuda_time):
    """On a known 30 ms CPU workload the timer must report about 30 (milliseconds). Measured twice
    at most, so that one stall of a busy machine does not fail a correct timer."""
    ms = 30.0

    def measure():
        started = time.perf_counter()
        value = as_float(call(cuda_time, "cuda_time", Clock(ms), warmup=1, repeats=3),
                         "cuda_time")
        elapsed = (time.perf_counter() - started) * 1e3
        if 0.02 <= value <= 0.08:
            fail(f"`cuda_time` returned {value:.3g} for a call that takes {ms:.0f} ms: it should return "
                 "milliseconds, not seconds.")
        expect(0.8 * ms <= value <= 1.5 * ms + 5,
               f"`cuda_time` returned {value:.3g} ms for a function that sleeps {ms:.0f} ms per call "
               "(expected about that: the median of the timed calls, in milliseconds).")
        expect(elapsed >= 0.9 * 4 * ms,
               f"`cuda_time(fn, warmup=1, repeats=3)` returned after {elapsed:.0f} ms, but 1 warm-up call "
               f"and 3 timed calls of a {ms:.0f} ms function take at least {4 * ms:.0f} ms.")

    try:
        measure()
    except CheckFailure:
        measure()


# -- the diagonal kernel and the diagonal forward passes ---------------------------------------

def check_diag_kernel_properties(kernel, w, T, name):
    """[h, 0, 0] = 1, [h, 0, 1] = w[h], [h, 0, k+1] = w[h] * [h, 0, k]."""
    H = w.shape[0]
    kernel = as_tensor(kernel, name)
    if tuple(kernel.shape) == (H, T):
        fail(f"`{name}` returned shape ({H}, {T}); expected (H, 1, T) = ({H}, 1, {T}): conv1d with "
             "groups=H wants one input channel per group, so keep a middle axis of size 1.")
    expect_shape(kernel, (H, 1, T), name, "H 1 T")
    kernel, w = kernel.detach().cpu().to(torch.float64)[:, 0], w.to(torch.float64)
    if not torch.isfinite(kernel).all():
        fail(f"`{name}` returned NaN or infinite values.")
    rtol = tolerance(torch.float32) * 10
    if (kernel[:, 0] - 1).abs().max() > rtol:
        if T > 1 and (kernel[:, 0] - w).abs().max() <= rtol:
            fail(f"`{name}`: index 0 should be all ones (w^0 = 1), not w.")
        if T > 1 and (kernel[:, -1] - 1).abs().max() <= rtol:
            fail(f"`{name}`: the kernel is already flipped: index k should hold w^k (flip it later, for "
                 "conv1d).")
        fail(f"`{name}`: index 0 should be all ones (w^0 = 1).")
    if T > 1 and (kernel[:, 1] - w).abs().max() > rtol:
        fail(f"`{name}`: index 1 should be w itself.")
    for k in range(1, T - 1):
        if (kernel[:, k + 1] - w * kernel[:, k]).abs().max() > rtol:
            fail(f"`{name}`: index {k + 1} should be w times index {k} (w^{k + 1}).")


def diag_kernel_is_powers_of_w(make_diag_conv_kernel):
    """`make_diag_conv_kernel` returns w^0 .. w^(T-1) per channel, shaped (H, 1, T)."""
    gen = fresh_generator(seed=282)
    for H, T in [(3, 6), (2, 5), (1, 4), (4, 1)]:
        w, *_ = random_diagonal_system(gen, 1, 1, 1, H)
        w[0] = -0.5  # negative entries: w^k alternates in sign
        kernel = call(make_diag_conv_kernel, "make_diag_conv_kernel", w, T)
        check_diag_kernel_properties(kernel, w, T, "make_diag_conv_kernel")


def diag_conv_agrees_with_unrolled(diag_conv_ssm_forward, unrolled_ssm_forward):
    """The depthwise forward pass follows the recurrence with W = diag(w) and matches the loop."""
    gen = fresh_generator(seed=283)
    for N, T, D, H in [(2, 9, 3, 4), (1, 1, 1, 1), (1, 5, 2, 1)]:
        w, U, b, x = random_diagonal_system(gen, N, T, D, H)
        out = call(diag_conv_ssm_forward, "diag_conv_ssm_forward", w, U, b, x)
        check_recurrence(out, torch.diag(w), U, b, x, "diag_conv_ssm_forward")
        loop = call(unrolled_ssm_forward, "unrolled_ssm_forward", torch.diag(w), U, b, x)
        check_agreement(out, loop, "diag_conv_ssm_forward", "unrolled_ssm_forward", torch.float64)
    expect_countable(diag_conv_ssm_forward, w, U, b, x, name="diag_conv_ssm_forward")


def _diagonal_recurrence(w, U, b, x):
    """h_1..h_T of the definition h_t = w * h_(t-1) + U x_t + b, in float64 (a few lines of loop)."""
    z = x.to(torch.float64) @ U.to(torch.float64).T + b.to(torch.float64)
    h, states = torch.zeros_like(z[:, 0]), []
    for t in range(z.shape[1]):
        h = w.to(torch.float64) * h + z[:, t]
        states.append(h)
    return torch.stack(states, dim=1)


def fft_follows_recurrence(fft_ssm_forward):
    """Long enough memory (one |w| near 1) that a circular wrap-around shows in the first outputs."""
    gen = fresh_generator(seed=284)
    for N, T, D, H in [(2, 12, 3, 4), (1, 1, 2, 2), (1, 7, 1, 3)]:
        w, U, b, x = random_diagonal_system(gen, N, T, D, H)
        w[0] = 0.97
        out = as_tensor(call(fft_ssm_forward, "fft_ssm_forward", w, U, b, x), "fft_ssm_forward")
        expect_shape(out, (N, T, H), "fft_ssm_forward", "N T H")
        out64, right = out.detach().cpu().to(torch.float64), _diagonal_recurrence(w, U, b, x)
        wrong = ((out64 - right).abs().amax(dim=(0, 2)) > 1e-6 * max(right.abs().max().item(), 1e-12))
        if wrong.any() and not wrong[-1] and wrong[0]:
            fail("`fft_ssm_forward`: the first outputs are wrong but the last ones are right, the signature "
                 "of a circular convolution: an FFT of length n wraps the end of the sequence around to the "
                 "start. Zero-pad to a length n of at least 2T - 1.")
        check_recurrence(out, torch.diag(w), U, b, x, "fft_ssm_forward")
    expect_countable(fft_ssm_forward, w, U, b, x, name="fft_ssm_forward")


# -- the scan ----------------------------------------------------------------------------------

def check_scan(out, a, u, name):
    """out[:, t] = a[:, t] * out[:, t-1] + u[:, t], with out[:, -1] = 0 before the start."""
    N, T, H = u.shape
    out = as_tensor(out, name)
    expect_shape(out, (N, T, H), name, "N T H")
    out, a, u = (t.detach().cpu().to(torch.float64) for t in (out, a, u))
    if not torch.isfinite(out).all():
        fail(f"`{name}` returned NaN or infinite values.")
    scale = max(out.abs().max().item(), u.abs().max().item(), 1e-12)
    tol = 1e-6 * scale
    previous = torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], dim=1)
    if (out - (a * previous + u)).abs().max().item() <= tol:
        return
    if T > 1 and out[:, 0].abs().max().item() <= tol:
        fail(f"`{name}`: the output starts with h_0 = 0 (an exclusive scan); index t-1 should hold h_t, "
             "for t = 1..T.")
    if (out[:, 0] - u[:, 0]).abs().max().item() > tol:
        fail(f"`{name}`: the first output should be h_1 = u_1 (h_0 = 0).")
    if (out - a * (previous + u)).abs().max().item() <= tol:
        fail(f"`{name}`: a_t multiplies the new input too; the update is h_t = a_t * h_(t-1) + u_t.")
    step = ((out - (a * previous + u)).abs().amax(dim=(0, 2)) > tol).nonzero()
    fail(f"`{name}` does not follow h_t = a_t * h_(t-1) + u_t; first wrong step: t={int(step[0]) + 1}.")


def scan_follows_recurrence(scan_ssm_forward):
    """`scan_ssm_forward` returns h_1 .. h_T of h_t = a_t * h_(t-1) + u_t."""
    gen = fresh_generator(seed=285)
    for N, T, H in [(2, 8, 3), (1, 13, 2), (1, 1, 1), (3, 5, 1)]:
        a, u = random_scan_inputs(gen, N, T, H)
        out = call(scan_ssm_forward, "scan_ssm_forward", a, u)
        check_scan(out, a, u, "scan_ssm_forward")
    expect_countable(scan_ssm_forward, a, u, name="scan_ssm_forward")
