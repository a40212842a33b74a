"""Inputs and checks shared by the two SSM assignments (CPU and GPU)."""
import torch

from .core import as_tensor, dtype_name, expect, expect_shape, fail, tolerance

# Named slips of an SSM kernel [D, C B, C A B, ...], shared by the public checks and the references
DIRECT_TERM_SHIFTED = ("K_0 should be the direct term D; every later entry is shifted by one step "
                       "(the kernel starts [D, C B, C A B, ...], not [C B, C A B, ...])")
DIRECT_TERM_MISSING = "K_0 = D is missing: the kernel has L + 1 entries and starts with the direct term D"
DIRECT_TERM_ZERO = "K_0 should be the direct term D, not 0"
LOW_RANK_NO_INVERSE_NORM = "the factor 1/|p|^2 is missing from the coefficient of p p^T in A^k"
LOW_RANK_POWERS_FROM_A1 = "K_1 should be C A^0 B = C B (A^0 = I): K_k uses A^(k-1), so the powers start at A^0"
LOW_RANK_NO_IDENTITY = ("the identity part of A^k is missing: A^k = I + (a multiple of) p p^T, so every K_k "
                        "with k >= 1 contains C B")


def direct_term_mistakes(right, next_entry):
    """Hint -> wrong kernel for the slips at K_0, given the right kernel [D, K_1, ..., K_L] and
    K_(L+1) (the last entry of a kernel that starts at C B)."""
    right = torch.as_tensor(right, dtype=torch.float64).flatten()
    starts_at_cb = torch.cat([right[1:], torch.tensor([float(next_entry)], dtype=torch.float64)])
    return {
        DIRECT_TERM_SHIFTED: starts_at_cb,
        DIRECT_TERM_MISSING: right[1:],
        DIRECT_TERM_ZERO: torch.cat([torch.zeros(1, dtype=torch.float64), right[1:]]) if float(right[0]) else None,
    }


def stable_matrix(gen, H, radius=0.9, dtype=torch.float64):
    """A random H x H matrix with spectral radius `radius`, so long recurrences stay finite."""
    M = torch.randn(H, H, generator=gen, dtype=torch.float64)
    largest = torch.linalg.eigvals(M).abs().max().item()
    return (M * (radius / max(largest, 1e-12))).to(dtype)


def random_system(gen, N, T, D, H, dtype=torch.float64, radius=0.9):
    """A random SSM (W, U, b, x) with spectral radius `radius`: drawn in float64, then cast to `dtype`."""
    W = stable_matrix(gen, H, radius, dtype)
    U = torch.randn(H, D, generator=gen, dtype=torch.float64).to(dtype)
    b = torch.randn(H, generator=gen, dtype=torch.float64).to(dtype)
    x = torch.randn(N, T, D, generator=gen, dtype=torch.float64).to(dtype)
    return W, U, b, x


def describe(N, T, D, H, dtype):
    """The inputs' sizes and dtype in words, for feedback."""
    return f"N={N}, T={T}, d_in={D}, H={H}, {dtype_name(dtype)}"


def check_recurrence(out, W, U, b, x, name):
    """Check that `out[:, t-1]` is h_t for h_t = W h_(t-1) + U x_t + b, step by step.

    This is the definition checked on the student's own outputs: it needs no reference
    implementation, so it can run in public tests.
    """
    N, T, _ = x.shape
    H = W.shape[0]
    out = as_tensor(out, name)
    expect_shape(out, (N, T, H), name, "N T H")
    out, W, U, b, x = (t.detach().cpu().to(torch.float64) for t in (out, W, U, b, x))
    rtol = tolerance(x.dtype if x.dtype != torch.float64 else torch.float64) * 50
    drive = x @ U.T + b
    previous = torch.cat([torch.zeros(N, 1, H, dtype=torch.float64), out[:, :-1]], dim=1)
    scale = max(out.abs().max().item(), 1e-12)

    def matches(candidate):
        return (out - candidate).abs().max().item() <= rtol * scale

    if not torch.isfinite(out).all():
        fail(f"`{name}` returned NaN or infinite values.")
    if matches(previous @ W.T + drive):
        return
    if (out[:, 0].abs().max().item() <= rtol * scale and T > 1
            and (out[:, 1:] - (out[:, :-1] @ W.T + drive[:, :-1])).abs().max().item() <= rtol * scale):
        fail(f"`{name}`: the output starts with h_0 = 0; index t-1 should hold h_t, for t = 1..T.")
    if matches(previous @ W + drive):
        fail(f"`{name}`: W is applied transposed. With states as rows, the update is h @ W.T "
             "(W h for column vectors).")
    if matches(previous @ W.T + x @ U.T):
        fail(f"`{name}`: the bias b is missing from the update.")
    if not (out[:, 0] - drive[:, 0]).abs().max().item() <= rtol * scale:
        fail(f"`{name}`: the first output should be h_1 = U x_1 + b (h_0 = 0).")
    step = ((out - (previous @ W.T + drive)).abs().amax(dim=(0, 2)) > rtol * scale).nonzero()
    fail(f"`{name}` does not follow h_t = W h_(t-1) + U x_t + b; first wrong step: t={int(step[0]) + 1}.")


def check_kernel_properties(kernel, W, T, name):
    """Definition of the conv kernel: [:, :, 0] = I, [:, :, 1] = W, [:, :, k+1] = W [:, :, k]."""
    H = W.shape[0]
    kernel = as_tensor(kernel, name)
    expect_shape(kernel, (H, H, T), name, "H H T")
    kernel, W = kernel.detach().cpu().to(torch.float64), W.to(torch.float64)
    rtol = tolerance(torch.float32) * 10
    scale = max(kernel.abs().max().item(), 1e-12)
    eye = torch.eye(H, dtype=torch.float64)
    if not torch.isfinite(kernel).all():
        fail(f"`{name}` returned NaN or infinite values.")
    if (kernel[:, :, 0] - eye).abs().max() > rtol:
        if T > 1 and (kernel[:, :, 0] - W).abs().max() <= rtol * scale:
            fail(f"`{name}`: kernel index 0 should be the identity (W^0), not W.")
        fail(f"`{name}`: kernel index 0 should be the identity matrix W^0.")
    if T > 1 and (kernel[:, :, 1] - W).abs().max() > rtol * scale:
        if (kernel[:, :, 1] - W.T).abs().max() <= rtol * scale:
            fail(f"`{name}`: the matrices are transposed: index k should be W^k, not (W^k)^T.")
        fail(f"`{name}`: kernel index 1 should be W itself.")
    for k in range(1, T - 1):
        if (kernel[:, :, k + 1] - W @ kernel[:, :, k]).abs().max() > rtol * scale:
            if (kernel[:, :, k + 1] - (W @ kernel[:, :, k].T).T).abs().max() <= rtol * scale:
                fail(f"`{name}`: the matrices are transposed from index {k + 1} on.")
            fail(f"`{name}`: index {k + 1} should be W times index {k} (W^{k + 1}).")


def check_agreement(conv_out, loop_out, name, other, dtype):
    """Two of the student's implementations of the forward pass agree to within rounding."""
    conv_out, loop_out = as_tensor(conv_out, name), as_tensor(loop_out, other)
    expect_shape(conv_out, tuple(loop_out.shape), name, "N T H")
    diff = (conv_out.cpu().double() - loop_out.cpu().double()).abs().max().item()
    scale = max(loop_out.abs().max().item(), 1e-12)
    expect(diff <= 50 * tolerance(dtype) * scale,
           f"`{name}` and `{other}` disagree: largest difference {diff / scale:.2g} relative to the "
           "output's scale. Both compute the same h_1..h_T.")
