"""Public checks for the CPU SSM assignment: the homework's examples and the definitions.

They compare against numbers worked out by hand and against the recurrence itself, so they
need no reference solution. The hidden tests compare against an independent reference on
fresh random inputs.
"""
import torch

from .core import as_tensor, call, expect, expect_close, fresh_generator
from .ssm_common import check_agreement, check_kernel_properties, check_recurrence, random_system

SCALAR_EXAMPLE = dict(A=[[0.8]], B=[1.0], C=[1.5], D=0.0, L=4)
SCALAR_KERNEL = [0.0, 1.5, 1.2, 0.96, 0.768]
MATRIX_EXAMPLE = dict(A=[[0.7, 0.1], [0.2, 0.6]], B=[1.0, 0.0], C=[1.0, 0.0], D=0.0, L=3)
MATRIX_KERNEL = [0.0, 1.0, 0.7, 0.51]


def _kernel_for(ssm_kernel, example):
    args = {k: torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else v
            for k, v in example.items()}
    return call(ssm_kernel, "ssm_kernel", args["A"], args["B"], args["C"], args["D"], args["L"])


def _diagnose_kernel(kernel, expected, example):
    kernel = as_tensor(kernel, "ssm_kernel").flatten()
    expected = torch.tensor(expected, dtype=torch.float64)
    D = float(example["D"])
    mistakes = {
        "K_0 = D is missing: the kernel has L + 1 entries and starts with the direct term D": expected[1:],
        f"K_0 should be D (here {D:g}); K_1 = C B comes next": torch.cat([expected[1:], expected[:1]]),
    }
    where = f"the homework's example with L = {example['L']}" + (f" and D = {D:g}" if D else "")
    expect_close(kernel, expected, "ssm_kernel", mistakes=mistakes, rtol=1e-6, where=where)


def kernel_matches_homework_examples(ssm_kernel):
    """The scalar example (0.8, 1, 1.5) and the 2 x 2 example from the homework."""
    _diagnose_kernel(_kernel_for(ssm_kernel, SCALAR_EXAMPLE), SCALAR_KERNEL, SCALAR_EXAMPLE)
    _diagnose_kernel(_kernel_for(ssm_kernel, MATRIX_EXAMPLE), MATRIX_KERNEL, MATRIX_EXAMPLE)


def kernel_starts_with_direct_term(ssm_kernel):
    """K_0 = D: an input reaches the output in the same step only through D; and the rest of the
    kernel is the scalar example's C A^(k-1) B (points only for a kernel that is right)."""
    example = dict(SCALAR_EXAMPLE, D=0.25)
    kernel = as_tensor(_kernel_for(ssm_kernel, example), "ssm_kernel").flatten()
    expected = [0.25] + SCALAR_KERNEL[1:]
    if kernel.numel() == len(expected) and torch.isfinite(kernel).all():
        tail_right = (kernel[1:].to(torch.float64) - torch.tensor(expected[1:], dtype=torch.float64)).abs().max() < 1e-6
        expect(not tail_right or abs(float(kernel[0]) - 0.25) < 1e-6,
               f"`ssm_kernel`: K_0 should equal D = 0.25, got {float(kernel[0]):.4g} (K_1..K_L are right).")
    _diagnose_kernel(kernel, expected, example)


def unrolled_follows_recurrence(unrolled_ssm_forward):
    gen = fresh_generator(seed=182)
    for N, T, D, H in [(2, 6, 3, 4), (1, 1, 2, 2)]:
        W, U, b, x = random_system(gen, N, T, D, H)
        out = call(unrolled_ssm_forward, "unrolled_ssm_forward", W, U, b, x)
        check_recurrence(out, W, U, b, x, "unrolled_ssm_forward")


def conv_kernel_is_powers_of_W(make_conv_kernel):
    gen = fresh_generator(seed=183)
    for H, T in [(3, 6), (2, 5), (1, 4)]:
        W, *_ = random_system(gen, 1, 1, 1, H)
        kernel = call(make_conv_kernel, "make_conv_kernel", W, T)
        check_kernel_properties(kernel, W, T, "make_conv_kernel")


def conv_agrees_with_unrolled(conv_ssm_forward, unrolled_ssm_forward):
    gen = fresh_generator(seed=184)
    for N, T, D, H in [(2, 7, 3, 4), (1, 1, 1, 1)]:
        W, U, b, x = random_system(gen, N, T, D, H)
        out = call(conv_ssm_forward, "conv_ssm_forward", W, U, b, x)
        check_recurrence(out, W, U, b, x, "conv_ssm_forward")
        loop = call(unrolled_ssm_forward, "unrolled_ssm_forward", W, U, b, x)
        check_agreement(out, loop, "conv_ssm_forward", "unrolled_ssm_forward", torch.float64)
