"""Hidden checks for the CPU SSM assignment: fresh inputs, float64 references, op counts."""
import torch

from ..checks.core import (
    FLOAT_DTYPES,
    as_tensor,
    call,
    dtype_name,
    expect,
    expect_close,
    fresh_generator,
    log2_ceil,
)
from ..checks.ssm_common import describe, random_system, stable_matrix
from ..checks.trace import grows_like_log, traced_call
from ..references import ssm_forward_cpu as ref

SHAPES = [(2, 7, 3, 4), (1, 1, 2, 3), (3, 12, 1, 1), (1, 33, 4, 5), (2, 20, 2, 2)]


def kernel_on_fresh_systems(ssm_kernel):
    """`ssm_kernel` matches the reference on fresh stable systems, L = 0 included."""
    gen = fresh_generator()
    for n, L in [(1, 6), (3, 9), (4, 1), (2, 0)]:
        A = stable_matrix(gen, n, radius=0.85)
        B, C = torch.randn(n, generator=gen, dtype=torch.float64), torch.randn(n, generator=gen, dtype=torch.float64)
        D = float(torch.randn(1, generator=gen, dtype=torch.float64))
        for dtype in FLOAT_DTYPES:
            where = f"state size n={n}, L={L}, {dtype_name(dtype)}"
            got = call(ssm_kernel, "ssm_kernel", A.to(dtype), B.to(dtype), C.to(dtype), D, L, where=where)
            expect_close(as_tensor(got, "ssm_kernel").flatten(), ref.ssm_kernel(A, B, C, D, L), "ssm_kernel",
                         input_dtype=dtype, mistakes=lambda: ref.ssm_kernel_mistakes(A, B, C, D, L),
                         where=where)


def _forward_matches(fn, name):
    gen = fresh_generator()
    for N, T, D, H in SHAPES:
        for dtype in FLOAT_DTYPES:
            W, U, b, x = random_system(gen, N, T, D, H, dtype)
            where = describe(N, T, D, H, dtype)
            got = call(fn, name, W, U, b, x, where=where)
            expect_close(got, ref.forward(W, U, b, x), name, dims="N T H", input_dtype=dtype,
                         mistakes=lambda: ref.forward_mistakes(W, U, b, x), where=where)


def unrolled_matches_reference(unrolled_ssm_forward):
    """`unrolled_ssm_forward` matches the reference on fresh systems of several shapes."""
    _forward_matches(unrolled_ssm_forward, "unrolled_ssm_forward")


def conv_matches_reference(conv_ssm_forward):
    """`conv_ssm_forward` matches the reference on fresh systems of several shapes."""
    _forward_matches(conv_ssm_forward, "conv_ssm_forward")


def conv_kernel_matches_reference(make_conv_kernel):
    """`make_conv_kernel` matches the powers of W on fresh matrices."""
    gen = fresh_generator()
    for H, T in [(3, 1), (2, 2), (4, 5), (3, 16), (2, 37)]:
        for dtype in FLOAT_DTYPES:
            W, *_ = random_system(gen, 1, 1, 1, H, dtype)
            where = f"H={H}, T={T}, {dtype_name(dtype)}"
            got = call(make_conv_kernel, "make_conv_kernel", W, T, where=where)
            reference = ref.powers(W, T)
            expect_close(got, reference, "make_conv_kernel", dims="H H T", input_dtype=dtype,
                         rtol=ref.powers_tolerance(W, T, reference),
                         mistakes=lambda: ref.kernel_mistakes(W, T), where=where)


def conv_kernel_uses_doubling(make_conv_kernel):
    """About log2(T) rounds of matrix products, not T - 1: counted, not timed."""
    gen = fresh_generator()
    for H, T in [(3, 300), (2, 1000)]:
        W, *_ = random_system(gen, 1, 1, 1, H)
        got, counts = traced_call(make_conv_kernel, W, T)
        expect_close(got, ref.powers(W, T), "make_conv_kernel", dims="H H T", where=f"H={H}, T={T}")
        budget = 3 * log2_ceil(T) + 4
        products = counts.matrix_products()
        expect(products <= budget,
               f"`make_conv_kernel(W, T={T})` ran {products} matrix products; doubling needs about "
               f"log2(T) = {log2_ceil(T)} rounds (allowed {budget}). Build W^0..W^(m-1), then multiply "
               "that whole block by W^m to get W^m..W^(2m-1), and square W^m.")


def conv_forward_has_no_time_loop(conv_ssm_forward):
    """The op count may grow like log T (the kernel build) but not like T."""
    gen = fresh_generator()
    counts = {}
    for T in (40, 320, 2560):
        W, U, b, x = random_system(gen, 2, T, 2, 3)
        got, counts[T] = traced_call(conv_ssm_forward, W, U, b, x, exclude_calls_to={"make_conv_kernel": 2})
        expect_close(got, ref.forward(W, U, b, x), "conv_ssm_forward", dims="N T H", where=f"T={T}")
    expect(counts[2560].convolutions() >= 1,
           "`conv_ssm_forward` ran no convolution that its result depends on: use F.conv1d or nn.Conv1d "
           f"with the kernel from make_conv_kernel ({counts[2560].summary()}).")
    # room for a kernel built inline by doubling: a few ops per doubling of T
    ok, seen = grows_like_log({T: c.compute() for T, c in counts.items()}, per_round=8)
    expect(ok, f"`conv_ssm_forward` loops over time ({seen}). The convolution should handle every time "
               "step at once.")


# (state size n, |p|^2, L). K_k grows like (1 + |p|^2)^(k-1): L log(1 + |p|^2) stays below 12
# (at most ~1e5 times K_1), so every kernel is finite and float32 keeps its digits.
# |p|^2 = 0 (p = 0, A = I) and 1e-12 test the limit |p|^2 -> 0.
LOW_RANK_CASES = [(1, 0.3, 6), (3, 0.0, 5), (5, 1e-12, 9), (8, 0.2, 0), (2, 2.0, 1), (64, 0.05, 40),
                  (700, 0.5, 25), (300, 0.01, 160), (2500, 1.0, 6)]
# float32: sums over n entries and powers up to L, each rounded to ~6e-8, drift to ~1e-5
LOW_RANK_FLOAT32_RTOL = 2e-4


def _low_rank_system(gen, n, norm2, dtype):
    p = torch.randn(n, generator=gen, dtype=torch.float64)
    p = p * (norm2 ** 0.5 / p.norm())
    B, C = (torch.randn(n, generator=gen, dtype=torch.float64) for _ in range(2))
    D = float(torch.randn(1, generator=gen, dtype=torch.float64))
    return p.to(dtype), B.to(dtype), C.to(dtype), D


def _size_of_p(norm2):
    return "p = 0" if norm2 == 0 else "tiny |p|" if norm2 < 1e-6 else f"|p|^2 = {norm2:g}"


def low_rank_kernel_on_fresh_inputs(low_rank_ssm_kernel):
    """`low_rank_ssm_kernel` matches the reference on fresh low-rank systems."""
    gen = fresh_generator()
    for n, norm2, L in LOW_RANK_CASES:
        for dtype in FLOAT_DTYPES:
            p, B, C, D = _low_rank_system(gen, n, norm2, dtype)
            where = f"n={n}, {_size_of_p(norm2)}, L={L}, {dtype_name(dtype)}"
            got = as_tensor(call(low_rank_ssm_kernel, "low_rank_ssm_kernel", p, B, C, D, L, where=where),
                            "low_rank_ssm_kernel").flatten()
            expect(norm2 > 0 or torch.isfinite(got).all(),
                   f"`low_rank_ssm_kernel` returned NaN or infinite values for p = 0 (inputs: {where}): "
                   "where you divide by |p|^2, use the limit as |p|^2 -> 0 instead.")
            expect_close(got, ref.low_rank_ssm_kernel(p, B, C, D, L), "low_rank_ssm_kernel", input_dtype=dtype,
                         rtol=LOW_RANK_FLOAT32_RTOL if dtype == torch.float32 else None,
                         mistakes=lambda: ref.low_rank_ssm_kernel_mistakes(p, B, C, D, L), where=where)


def low_rank_kernel_never_forms_A(low_rank_ssm_kernel):
    """O(n + L) memory and no product with A per step: counted, not timed."""
    gen = fresh_generator()
    n, lengths = 256, (16, 128)
    counts = {}
    for L in lengths:
        p, B, C, D = _low_rank_system(gen, n, 0.02, torch.float64)
        got, counts[L] = traced_call(low_rank_ssm_kernel, p, B, C, D, L)
        expect_close(as_tensor(got, "low_rank_ssm_kernel").flatten(), ref.low_rank_ssm_kernel(p, B, C, D, L),
                     "low_rank_ssm_kernel", mistakes=lambda: ref.low_rank_ssm_kernel_mistakes(p, B, C, D, L),
                     where=f"n={n}, L={L}")
        largest = counts[L].largest_output
        expect(largest < n * n // 2,
               f"`low_rank_ssm_kernel` built an n x n matrix (a result with {largest} elements for n={n}): "
               "A = I + p p^T (or p p^T) should never be formed; work with the vectors p, B, C.")
        expect(largest <= 8 * (n + L),
               f"`low_rank_ssm_kernel` made an intermediate with {largest} elements for n={n}, L={L}: "
               "memory should grow like n + L, not n x L.")
    short, long = (counts[L] for L in lengths)
    reductions = {"sum", "mean", "linalg_vector_norm", "norm"}
    growth = (long.matrix_products() + long.of(reductions)) - (short.matrix_products() + short.of(reductions))
    expect(growth <= 2,
           f"`low_rank_ssm_kernel` ran {growth} more products or sums over n at L={lengths[1]} than at "
           f"L={lengths[0]}: it multiplies a vector by A once per step (O(n L) work). The n-dimensional "
           "work should happen once; only scalars may depend on k.")
