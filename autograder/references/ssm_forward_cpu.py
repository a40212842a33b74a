"""State-space model references: kernel, recurrence, powers of W, and mistake models."""
import torch

from ..checks.core import relative_error, tolerance
from ..checks.ssm_common import (
    LOW_RANK_NO_IDENTITY,
    LOW_RANK_NO_INVERSE_NORM,
    LOW_RANK_POWERS_FROM_A1,
    direct_term_mistakes,
)

F64 = torch.float64


def ssm_kernel(A, B, C, D, L):
    """K_0 = D, K_k = C A^(k-1) B for k = 1 .. L, by repeated multiplication in float64."""
    A, B, C = (torch.as_tensor(t, dtype=F64).cpu() for t in (A, B, C))
    values, state = [float(D)], B.clone()
    for _ in range(L):
        values.append(float(C @ state))
        state = A @ state
    return torch.tensor(values, dtype=F64)


def low_rank_ssm_kernel(p, B, C, D, L):
    """ssm_kernel for A = I + p p^T, multiplying by A without forming it: A v = v + p (p . v)."""
    p, B, C = (torch.as_tensor(t, dtype=F64).cpu() for t in (p, B, C))
    values, state = [float(D)], B.clone()
    for _ in range(L):
        values.append(float(C @ state))
        state = state + p * (p @ state)
    return torch.tensor(values, dtype=F64)


def forward(W, U, b, x):
    """h_t = W h_(t-1) + U x_t + b, h_0 = 0; returns (N, T, H) holding h_1..h_T."""
    W, U, b, x = (torch.as_tensor(t).to(F64).cpu() for t in (W, U, b, x))
    N, T, _ = x.shape
    h = torch.zeros(N, W.shape[0], dtype=F64)
    out = []
    for t in range(T):
        h = h @ W.T + x[:, t] @ U.T + b
        out.append(h)
    return torch.stack(out, dim=1)


def powers(W, T, dtype=F64):
    """(H, H, T) with [:, :, k] = W^k, by repeated multiplication in `dtype`."""
    W = torch.as_tensor(W).to(dtype).cpu()
    current, out = torch.eye(W.shape[0], dtype=dtype), []
    for _ in range(T):
        out.append(current)
        current = W @ current
    return torch.stack(out, dim=-1)


def _squared_powers(W, T):
    """W^0 .. W^(T-1) in W's dtype by repeated squaring (the reference answer's way), (H, H, T)."""
    squares, power = torch.eye(W.shape[0], dtype=W.dtype).unsqueeze(0), W
    while squares.shape[0] < T:
        squares = torch.cat([squares, power @ squares], dim=0)
        power = power @ power
    return squares[:T].permute(1, 2, 0)


def powers_tolerance(W, T, reference):
    """The relative tolerance for W^0 .. W^(T-1) computed in W's dtype, `reference` being their
    float64 values (`powers`); None (the usual one) for float64. A non-normal W amplifies rounding
    over a chain of products, so a fixed float32 tolerance (2e-5) failed the reference answer
    about once in 10,000 fresh draws of H=2, T=37. Allowed: four times what the two correct ways
    (repeated products, repeated squaring) lose in that dtype on this very W, never less than the
    usual tolerance; a wrong answer still fails the float64 cases, whose tolerance stays 1e-9."""
    if W.dtype == F64:
        return None
    W = torch.as_tensor(W).cpu()
    lost = max(relative_error(computed, reference) for computed in (powers(W, T, W.dtype), _squared_powers(W, T)))
    return max(tolerance(W.dtype), 4 * lost)


def diagonal_forward(w, U, b, x):
    """The forward pass with W = diag(w)."""
    return forward(torch.diag(torch.as_tensor(w).to(F64)), U, b, x)


def scan(a, u):
    """h_t = a_t * h_(t-1) + u_t elementwise, h_0 = 0, over (N, T, H)."""
    a, u = torch.as_tensor(a).to(F64).cpu(), torch.as_tensor(u).to(F64).cpu()
    h, out = torch.zeros_like(u[:, 0]), []
    for t in range(u.shape[1]):
        h = a[:, t] * h + u[:, t]
        out.append(h)
    return torch.stack(out, dim=1)


# -- mistake models: what a specific wrong implementation returns ------------------------------

def forward_mistakes(W, U, b, x):
    """Hint -> the output that mistake produces, for the forward pass."""
    W64, U64, b64, x64 = (torch.as_tensor(t).to(F64).cpu() for t in (W, U, b, x))
    right = forward(W64, U64, b64, x64)
    N, T, _ = x64.shape
    h_with_h0 = torch.cat([torch.zeros_like(right[:, :1]), right[:, :-1]], dim=1)
    z = x64 @ U64.T + b64
    k = powers(W64, T)
    unflipped = torch.stack([
        sum(z[:, s] @ k[:, :, T - 1 - (t - s)].T for s in range(t + 1)) for t in range(T)], dim=1)
    return {
        "W is applied transposed (for row-vector states use h @ W.T, i.e. W h for column vectors)":
            forward(W64.T, U64, b64, x64),
        "the bias b is missing": forward(W64, U64, torch.zeros_like(b64), x64),
        "the output starts with h_0 = 0; it should hold h_1, ..., h_T": h_with_h0,
        "the output is shifted by one step: index t-1 should hold h_t": torch.cat(
            [right[:, 1:], right[:, -1:]], dim=1),
        "U is applied transposed": forward(W64, U64.T, b64, x64) if U64.shape[0] == U64.shape[1] else None,
        "the convolution kernel is not flipped: conv1d computes a cross-correlation, so the "
        "kernel must run from W^(T-1) down to W^0": unflipped,
    }


def kernel_mistakes(W, T):
    """{likely mistake: the kernel it gives} for `make_conv_kernel`."""
    W64 = torch.as_tensor(W).to(F64).cpu()
    right = powers(W64, T)
    return {
        "kernel index 0 should be the identity (W^0), and index k should be W^k": powers(W64, T + 1)[:, :, 1:],
        "the matrices are transposed: index k should be W^k, not (W^k)^T": right.transpose(0, 1),
        "the kernel is already flipped: index k should be W^k (flip it later, for conv1d)": right.flip(-1),
    }


def ssm_kernel_mistakes(A, B, C, D, L):
    """{likely mistake: the kernel it gives} for `ssm_kernel`."""
    A64, B64, C64 = (torch.as_tensor(t, dtype=F64).cpu() for t in (A, B, C))
    right = ssm_kernel(A64, B64, C64, D, L)
    return {
        **direct_term_mistakes(right, ssm_kernel(A64, B64, C64, D, L + 1)[-1]),
        "the powers of A are off by one: K_1 = C B, K_2 = C A B, ...": ssm_kernel(A64, A64 @ B64, C64, D, L),
    }


def low_rank_ssm_kernel_mistakes(p, B, C, D, L):
    """Hint -> wrong kernel for A = I + p p^T, written with A^k = I + c_k p p^T, c_k = ((1+s)^k - 1)/s."""
    p64, B64, C64 = (torch.as_tensor(t, dtype=F64).cpu() for t in (p, B, C))
    s = float(p64 @ p64)
    cb, cp_pb = float(C64 @ B64), float(C64 @ p64) * float(p64 @ B64)
    k = torch.arange(L + 1, dtype=F64)

    def with_coefficients(coefficients, identity=1.0):
        return torch.cat([torch.tensor([float(D)], dtype=F64), identity * cb + coefficients[:L] * cp_pb])

    growth = (1 + s) ** k
    right = low_rank_ssm_kernel(p64, B64, C64, D, L)
    return {
        **direct_term_mistakes(right, low_rank_ssm_kernel(p64, B64, C64, D, L + 1)[-1]),
        LOW_RANK_NO_INVERSE_NORM: with_coefficients(growth - 1),
        LOW_RANK_POWERS_FROM_A1: low_rank_ssm_kernel(p64, B64 + p64 * float(p64 @ B64), C64, D, L),
        LOW_RANK_NO_IDENTITY: with_coefficients((growth - 1) / s if s > 0 else k, identity=0.0),
    }
