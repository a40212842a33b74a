"""Hidden checks for the CPU SSM assignment: fresh inputs, float64 references, op counts."""
import torch

from ..checks.core import as_tensor, call, expect, expect_close, fresh_generator, log2_ceil
from ..checks.ssm_common import describe, random_system
from ..checks.trace import traced_call
from ..references import ssm as ref

SHAPES = [(2, 7, 3, 4), (1, 1, 2, 3), (3, 12, 1, 1), (1, 33, 4, 5), (2, 20, 2, 2)]
DTYPES = (torch.float64, torch.float32)


def kernel_on_fresh_systems(ssm_kernel):
    gen = fresh_generator()
    for n, L in [(1, 6), (3, 9), (4, 1), (2, 0)]:
        A = ref_stable(gen, n)
        B, C = torch.randn(n, generator=gen, dtype=torch.float64), torch.randn(n, generator=gen, dtype=torch.float64)
        D = float(torch.randn(1, generator=gen, dtype=torch.float64))
        for dtype in DTYPES:
            where = f"state size n={n}, L={L}, {str(dtype)[6:]}"
            got = call(ssm_kernel, "ssm_kernel", A.to(dtype), B.to(dtype), C.to(dtype), D, L, where=where)
            expect_close(as_tensor(got, "ssm_kernel").flatten(), ref.ssm_kernel(A, B, C, D, L), "ssm_kernel",
                         input_dtype=dtype, mistakes=lambda: ref.ssm_kernel_mistakes(A, B, C, D, L),
                         where=where)


def ref_stable(gen, n):
    from ..checks.ssm_common import stable_matrix
    return stable_matrix(gen, n, 0.85)


def _forward_matches(fn, name):
    gen = fresh_generator()
    for N, T, D, H in SHAPES:
        for dtype in DTYPES:
            W, U, b, x = random_system(gen, N, T, D, H, dtype)
            where = describe(N, T, D, H, dtype)
            got = call(fn, name, W, U, b, x, where=where)
            expect_close(got, ref.forward(W, U, b, x), name, dims="N T H", input_dtype=dtype,
                         mistakes=lambda: ref.forward_mistakes(W, U, b, x), where=where)


def unrolled_matches_reference(unrolled_ssm_forward):
    _forward_matches(unrolled_ssm_forward, "unrolled_ssm_forward")


def conv_matches_reference(conv_ssm_forward):
    _forward_matches(conv_ssm_forward, "conv_ssm_forward")


def conv_kernel_matches_reference(make_conv_kernel):
    gen = fresh_generator()
    for H, T in [(3, 1), (2, 2), (4, 5), (3, 16), (2, 37)]:
        for dtype in DTYPES:
            W, *_ = random_system(gen, 1, 1, 1, H, dtype)
            where = f"H={H}, T={T}, {str(dtype)[6:]}"
            got = call(make_conv_kernel, "make_conv_kernel", W, T, where=where)
            expect_close(got, ref.powers(W, T), "make_conv_kernel", dims="H H T", input_dtype=dtype,
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
    short, long = 40, 320
    counts = {}
    for T in (short, long):
        W, U, b, x = random_system(gen, 2, T, 2, 3)
        got, counts[T] = traced_call(conv_ssm_forward, W, U, b, x, exclude_calls_to=["make_conv_kernel"])
        expect_close(got, ref.forward(W, U, b, x), "conv_ssm_forward", dims="N T H", where=f"T={T}")
    expect(counts[long].convolutions() >= 1,
           "`conv_ssm_forward` ran no convolution: use F.conv1d or nn.Conv1d with the kernel from "
           f"make_conv_kernel ({counts[long].summary()}).")
    growth = counts[long].compute() - counts[short].compute()
    allowed = 12  # room for a kernel built inline by doubling: log2(T) grows by 3 from T=40 to 320
    expect(growth <= allowed,
           f"`conv_ssm_forward` ran {growth} more ops at T={long} than at T={short}: it loops over "
           f"time (allowed growth {allowed}). The convolution should handle every time step at once.")
