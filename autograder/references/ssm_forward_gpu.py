"""References for the GPU SSM assignment beyond `references.ssm_forward_cpu`: the diagonal kernel, the
diagonal forward pass for large H, and models of the mistakes specific to the depthwise, FFT and
scan implementations. Plain loops in float64 on the CPU, written independently of the solution.
"""
import torch

from .ssm_forward_cpu import F64, forward_mistakes, scan


def _f64(t):
    return torch.as_tensor(t).detach().to(F64).cpu()


def diag_kernel(w, T):
    """(H, 1, T) with [h, 0, k] = w[h]^k, by repeated multiplication (index 0 is all ones)."""
    w = _f64(w)
    out = torch.ones(w.shape[0], 1, T, dtype=F64)
    for k in range(1, T):
        out[:, 0, k] = out[:, 0, k - 1] * w
    return out


def drive(U, b, x):
    """z_t = U x_t + b for every step: (N, T, H)."""
    return _f64(x) @ _f64(U).T + _f64(b)


def diagonal_forward(w, U, b, x):
    """h_t = w * h_(t-1) + U x_t + b (elementwise), h_0 = 0: H independent scalar loops.

    The same as `references.ssm_forward_cpu.diagonal_forward`, without forming an H x H matrix, so it also
    works for very large H.
    """
    z = drive(U, b, x)
    return scan(_f64(w).expand_as(z), z)


def circular_forward(w, U, b, x):
    """What an FFT of length T (no zero padding) returns: a circular convolution over time,
    h_t = sum_j w^j z_((t - j) mod T), so the first outputs pick up inputs from the end."""
    z, w = drive(U, b, x), _f64(w)
    T = z.shape[1]
    out = torch.zeros_like(z)
    for j in range(T):
        out += w ** j * torch.roll(z, shifts=j, dims=1)
    return out


def diag_kernel_mistakes(w, T):
    """{likely mistake: the kernel it gives} for `make_diag_conv_kernel`."""
    right = diag_kernel(w, T)
    return {
        "index 0 should be all ones (w^0 = 1), and index k should be w^k": diag_kernel(w, T + 1)[:, :, 1:],
        "the kernel is already flipped: index k should hold w^k (flip it later, for conv1d)": right.flip(-1),
        "the kernel should have shape (H, 1, T): conv1d with groups=H wants one input channel per "
        "group, so keep the middle axis of size 1": right[:, 0],
    }


def diagonal_forward_mistakes(w, U, b, x):
    """Hint -> wrong output, for the three diagonal forward passes (depthwise, FFT)."""
    w64 = _f64(w)
    mistakes = {hint: wrong for hint, wrong in forward_mistakes(torch.diag(w64), U, b, x).items()
                if not hint.startswith(("W is applied transposed", "U is applied transposed"))}
    right = diagonal_forward(w64, U, b, x)
    mistakes["the kernel starts at w instead of 1: index 0 of the diagonal kernel should be all ones "
             "(w^0 = 1)"] = w64 * right
    mistakes["the FFT wrapped around: an FFT of length T computes a circular convolution, so the "
             "first outputs pick up inputs from the end of the sequence; zero-pad to a length of at "
             "least 2T - 1"] = circular_forward(w64, U, b, x)
    return mistakes


def scan_mistakes(a, u):
    """{likely mistake: the output it gives} for `scan_ssm_forward`."""
    a, u = _f64(a), _f64(u)
    right = scan(a, u)
    ones = torch.ones_like(a[:, :1])
    return {
        "the output starts with h_0 = 0 (an exclusive scan); index t-1 should hold h_t":
            torch.cat([torch.zeros_like(right[:, :1]), right[:, :-1]], dim=1),
        "a_t multiplies the new input too: h_t = a_t * h_(t-1) + u_t, not a_t * (h_(t-1) + u_t)":
            scan(a, a * u),
        "a is one step off: step t should use a_t, not a_(t-1)":
            scan(torch.cat([ones, a[:, :-1]], dim=1), u),
        "the scan runs backwards in time (h_t depends on later inputs)":
            scan(a.flip(1), u.flip(1)).flip(1),
    }
