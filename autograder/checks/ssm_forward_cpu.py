"""Public checks for the CPU SSM assignment: the homework's examples and the definitions.

They compare against numbers worked out by hand and against the recurrence itself, so they
need no reference solution. The hidden tests compare against an independent reference on
fresh random inputs.
"""
import torch

from .core import as_tensor, call, expect, expect_close, fresh_generator
from .ssm_common import (
    LOW_RANK_NO_IDENTITY,
    LOW_RANK_NO_INVERSE_NORM,
    LOW_RANK_POWERS_FROM_A1,
    check_agreement,
    check_kernel_properties,
    check_recurrence,
    direct_term_mistakes,
    random_system,
)
from .trace import expect_countable

SCALAR_EXAMPLE = dict(A=[[0.8]], B=[1.0], C=[1.5], D=0.0, L=4)
SCALAR_KERNEL = [0.0, 1.5, 1.2, 0.96, 0.768]
MATRIX_EXAMPLE = dict(A=[[0.7, 0.1], [0.2, 0.6]], B=[1.0, 0.0], C=[1.0, 0.0], D=0.0, L=3)
MATRIX_KERNEL = [0.0, 1.0, 0.7, 0.51]
# the next entry C A^L B, which a kernel that starts at C B ends with: it names that slip
SCALAR_NEXT, MATRIX_NEXT = 0.6144, 0.383

# Homework 1(f) with small numbers: p = (0.5, 0.5), so A = I + p p^T = [[1.25, 0.25], [0.25, 1.25]]
LOW_RANK_EXAMPLE = dict(p=[0.5, 0.5], B=[1.0, 0.0], C=[1.0, 0.0], D=0.25, L=4)
LOW_RANK_KERNEL = [0.25, 1.0, 1.25, 1.625, 2.1875]
LOW_RANK_NEXT = 3.03125
LOW_RANK_SLIPS = {  # what each named slip returns on that example
    LOW_RANK_NO_INVERSE_NORM: [0.25, 1.0, 1.125, 1.3125, 1.59375],
    LOW_RANK_POWERS_FROM_A1: [0.25, 1.25, 1.625, 2.1875, 3.03125],
    LOW_RANK_NO_IDENTITY: [0.25, 0.0, 0.25, 0.625, 1.1875],
}
# p = 0 makes A = I: every K_k with k >= 1 is C B (and |p|^2 = 0 must not be divided by)
ZERO_P_EXAMPLE = dict(p=[0.0, 0.0, 0.0], B=[1.0, 2.0, -1.0], C=[0.5, 1.0, 1.0], D=-1.0, L=3)
ZERO_P_KERNEL = [-1.0, 1.5, 1.5, 1.5]


def _kernel_for(ssm_kernel, example):
    args = {k: torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else v
            for k, v in example.items()}
    return call(ssm_kernel, "ssm_kernel", args["A"], args["B"], args["C"], args["D"], args["L"])


def _diagnose_kernel(kernel, expected, example, next_entry):
    kernel = as_tensor(kernel, "ssm_kernel").flatten()
    mistakes = direct_term_mistakes(expected, next_entry)
    expected = torch.tensor(expected, dtype=torch.float64)
    D = float(example["D"])
    where = f"the homework's example with L = {example['L']}" + (f" and D = {D:g}" if D else "")
    expect_close(kernel, expected, "ssm_kernel", mistakes=mistakes, rtol=1e-6, where=where)


def kernel_matches_homework_examples(ssm_kernel):
    """The scalar example (0.8, 1, 1.5) and the 2 x 2 example from the homework."""
    _diagnose_kernel(_kernel_for(ssm_kernel, SCALAR_EXAMPLE), SCALAR_KERNEL, SCALAR_EXAMPLE, SCALAR_NEXT)
    _diagnose_kernel(_kernel_for(ssm_kernel, MATRIX_EXAMPLE), MATRIX_KERNEL, MATRIX_EXAMPLE, MATRIX_NEXT)


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
    _diagnose_kernel(kernel, expected, example, SCALAR_NEXT)


def unrolled_follows_recurrence(unrolled_ssm_forward):
    """`unrolled_ssm_forward` follows h_t = W h_(t-1) + U x_t + b, step by step."""
    gen = fresh_generator(seed=182)
    for N, T, D, H in [(2, 6, 3, 4), (1, 1, 2, 2)]:
        W, U, b, x = random_system(gen, N, T, D, H)
        out = call(unrolled_ssm_forward, "unrolled_ssm_forward", W, U, b, x)
        check_recurrence(out, W, U, b, x, "unrolled_ssm_forward")


def conv_kernel_is_powers_of_W(make_conv_kernel):
    """`make_conv_kernel` returns W^0 .. W^(T-1) in the layout the question asks for."""
    gen = fresh_generator(seed=183)
    for H, T in [(3, 6), (2, 5), (1, 4)]:
        W, *_ = random_system(gen, 1, 1, 1, H)
        kernel = call(make_conv_kernel, "make_conv_kernel", W, T)
        check_kernel_properties(kernel, W, T, "make_conv_kernel")
    expect_countable(make_conv_kernel, W, T, name="make_conv_kernel")


def conv_agrees_with_unrolled(conv_ssm_forward, unrolled_ssm_forward):
    """`conv_ssm_forward` follows the recurrence and agrees with `unrolled_ssm_forward`."""
    gen = fresh_generator(seed=184)
    for N, T, D, H in [(2, 7, 3, 4), (1, 1, 1, 1)]:
        W, U, b, x = random_system(gen, N, T, D, H)
        out = call(conv_ssm_forward, "conv_ssm_forward", W, U, b, x)
        check_recurrence(out, W, U, b, x, "conv_ssm_forward")
        loop = call(unrolled_ssm_forward, "unrolled_ssm_forward", W, U, b, x)
        check_agreement(out, loop, "conv_ssm_forward", "unrolled_ssm_forward", torch.float64)
    W, U, b, x = random_system(gen, 2, 7, 3, 4)
    expect_countable(conv_ssm_forward, W, U, b, x, name="conv_ssm_forward")


def low_rank_kernel_matches_examples(low_rank_ssm_kernel):
    """Homework 1(f) on a 2-dimensional example worked by hand, and p = 0 (A = I)."""
    for example, expected, next_entry, slips in (
            (LOW_RANK_EXAMPLE, LOW_RANK_KERNEL, LOW_RANK_NEXT, LOW_RANK_SLIPS),
            (ZERO_P_EXAMPLE, ZERO_P_KERNEL, ZERO_P_KERNEL[-1], {})):
        p, B, C = (torch.tensor(example[k], dtype=torch.float64) for k in ("p", "B", "C"))
        where = f"a {p.numel()}-dimensional example with |p|^2 = {float(p @ p):g} and L = {example['L']}"
        got = as_tensor(call(low_rank_ssm_kernel, "low_rank_ssm_kernel", p, B, C, example["D"], example["L"],
                             where=where), "low_rank_ssm_kernel").flatten()
        expect(float(p @ p) > 0 or torch.isfinite(got).all(),
               f"`low_rank_ssm_kernel` returned NaN or infinite values for p = 0 (inputs: {where}): "
               "where you divide by |p|^2, use the limit as |p|^2 -> 0 instead.")
        mistakes = {**direct_term_mistakes(expected, next_entry),
                    **{hint: torch.tensor(wrong, dtype=torch.float64) for hint, wrong in slips.items()}}
        expect_close(got, torch.tensor(expected, dtype=torch.float64),
                     "low_rank_ssm_kernel", mistakes=mistakes, rtol=1e-6, where=where)
    p, B, C = (torch.linspace(-0.3, 0.3, 8, dtype=torch.float64) + shift for shift in (0.0, 0.5, -0.5))
    expect_countable(low_rank_ssm_kernel, p, B, C, 0.5, 40, name="low_rank_ssm_kernel")
