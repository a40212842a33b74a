"""Public checks for the linear purification assignment.

They use the homework's worked numbers and the defining property of the optimal purifier (the
gradient of the regularized loss vanishes there: W (X X^T + lam I) = X X^T), so they need no
reference solution; this module ships to students, so nothing in it computes a graded answer
(tests/test_public_bundle.py checks that). The hidden tests compare with independent references
on fresh inputs.
"""
import math

import torch

from .core import as_float, as_tensor, call, expect, expect_close, expect_shape, fail, fresh_generator, tolerance

F64 = torch.float64

# The homework's 2 x 4 data matrix and its two candidate encoders.
HOMEWORK_X = [[-2.17, 1.98, 2.41, -2.03], [0.02, -0.01, 0.01, -0.02]]
W_ALPHA = [[1.0, 0.0], [0.0, 1.0]]
W_BETA = [[1.0, 0.0], [0.0, 0.0]]
# (reconstruction loss, regularization loss) for each encoder, and the threshold on lam.
HOMEWORK_TABLE = {"alpha": (0.0, 2.0), "beta": (0.001, 1.0)}
HOMEWORK_THRESHOLD = 0.001
# The design question: singular values, k, keep, attenuate, and the answer.
HOMEWORK_SIGMAS = [10.0, 8.0, 4.0, 1.0, 0.5, 0.36, 0.16, 0.01]
HOMEWORK_RANGE = (1.0, 4.0)


def _float64_tensor(values):
    """The homework's numbers as a float64 tensor."""
    return torch.tensor(values, dtype=F64)


# -- shared helpers (the hidden checks use them too) -----------------------------------------

def gradient_residual(W, X, lam):
    """||W (X X^T + lam I) - X X^T||_F / ||X X^T||_F: zero exactly where the gradient of the
    regularized loss vanishes, that is at its minimizer."""
    W = torch.as_tensor(W).detach().to(F64).cpu()
    X = torch.as_tensor(X).detach().to(F64).cpu()
    G = X @ X.T
    A = G + float(lam) * torch.eye(X.shape[0], dtype=F64)
    return float((W @ A - G).norm() / G.norm())


def gradient_descent_settings(X, lam, reach=1e-8):
    """(steps, lr) with which plain gradient descent from W = 0 gets within `reach` (relative).

    The gradient is 2 (W A - X X^T) with A = X X^T + lam I, so the error shrinks by
    |1 - 2 lr a| per step along an eigenvalue a of A; lr = 1 / (a_max + a_min) is the best step.
    """
    X = torch.as_tensor(X).detach().to(F64).cpu()
    eig = torch.linalg.eigvalsh(X @ X.T) + float(lam)
    a_min, a_max = float(eig.min()), float(eig.max())
    lr = 1.0 / (a_max + a_min)
    rate = (a_max - a_min) / (a_max + a_min)
    steps = 1 if rate <= 1e-12 else math.ceil(math.log(reach) / math.log(rate))
    return max(steps, 1), lr


def purifier_data(gen, m, n, sigmas, dtype=F64):
    """An m x n data matrix with the given singular values (random singular vectors)."""
    r = len(sigmas)
    left, _ = torch.linalg.qr(torch.randn(m, m, generator=gen, dtype=F64))
    right, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
    X = left[:, :r] @ torch.diag(torch.tensor(sigmas, dtype=F64)) @ right[:, :r].T
    return X.to(dtype)


def as_range(value, name):
    """None, or a (lo, hi) pair of floats from a tuple, list, tensor or numpy array of two numbers."""
    if value is None:
        return None
    if value is Ellipsis:
        fail(f"`{name}`: it returned `...`: the function is still a stub.")
    if isinstance(value, torch.Tensor) or type(value).__name__ == "ndarray":
        array = torch.as_tensor(value).detach().cpu() if not isinstance(value, torch.Tensor) else value.detach()
        flat = array.flatten()
        items = [flat[i] for i in range(flat.numel())]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        fail(f"`{name}` should return a pair (lo, hi) or None, but it returned a "
             f"{type(value).__name__}.")
    if len(items) != 2:
        fail(f"`{name}` should return two numbers (lo, hi) or None, but it returned {len(items)} values.")
    lo, hi = (as_float(v, name) for v in items)
    if math.isnan(lo) or math.isnan(hi):
        fail(f"`{name}` returned NaN in its range.")
    return lo, hi


def _same_bound(a, b, rtol):
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rtol * max(abs(b), 1.0)


def _same_range(actual, expected, rtol):
    if actual is None or expected is None:
        return actual is None and expected is None
    return _same_bound(actual[0], expected[0], rtol) and _same_bound(actual[1], expected[1], rtol)


def _range_text(r):
    """A range of lam as feedback prints it: "(lo, hi)", or "None" for the empty range."""
    return "None" if r is None else f"({r[0]:.6g}, {r[1]:.6g})"


def compare_range(value, expected, name, *, dtype=F64, where=None, mistakes=None, reveal=False):
    """Compare a returned range with the expected one (None = empty). `reveal` prints values
    (only for the homework's public numbers)."""
    actual = as_range(value, name)
    rtol = max(tolerance(dtype), 1e-9)
    if _same_range(actual, expected, rtol):
        return
    context = f" (inputs: {where})" if where else ""
    matched = [hint for hint, wrong in (mistakes or {}).items() if _same_range(actual, wrong, max(rtol, 1e-6))]
    if actual is None and expected is not None:
        # a stub also returns None, so say both
        likely = f" Likely cause: {'; '.join(matched)}." if matched else ""
        shown = f" (expected {_range_text(expected)})" if reveal else ""
        fail(f"`{name}` returned None, but a range of lam exists{context}{shown}.{likely} (A function that "
             "is still a stub returns None too: replace `...` with your code.)")
    if matched:
        fail(f"`{name}` is wrong{context}: {matched[0]}.")
    if actual is not None and actual[0] > actual[1]:
        fail(f"`{name}` returned a range with lo > hi{context}: no lam satisfies both conditions "
             "then, so return None.")
    if reveal:
        fail(f"`{name}` returned {_range_text(actual)}, expected {_range_text(expected)}{context}.")
    if expected is None:
        fail(f"`{name}` returned a range, but no lam satisfies both conditions{context}: expected None.")
    fail(f"`{name}` returned the wrong bounds{context}: the upper bound comes from the weakest "
         "direction to keep, the lower bound from the strongest direction to attenuate (and lam >= 0).")


# -- question 1: the loss table -------------------------------------------------------------

def loss_table_matches_homework(reconstruction_loss, regularization_loss):
    """The table of the homework: (0, 2) for the identity, (0.001, 1) for W_beta."""
    X = _float64_tensor(HOMEWORK_X)
    for label, W in (("alpha", _float64_tensor(W_ALPHA)), ("beta", _float64_tensor(W_BETA))):
        recon_expected, reg_expected = HOMEWORK_TABLE[label]
        recon = as_float(call(reconstruction_loss, "reconstruction_loss", W, X), "reconstruction_loss")
        reg = as_float(call(regularization_loss, "regularization_loss", W), "regularization_loss")
        recon_hints = {"the norm is not squared: the loss is the sum of the squared entries of X - W X":
                       math.sqrt(recon_expected),
                       "it is a mean; the loss is the sum of the squared entries of X - W X":
                       recon_expected / X.numel()}
        reg_hints = {"the norm is not squared: the penalty is the sum of the squared entries of W":
                     math.sqrt(reg_expected),
                     "it is a mean; the penalty is the sum of the squared entries of W": reg_expected / W.numel()}
        expect_close(_float64_tensor(recon), _float64_tensor(recon_expected), "reconstruction_loss", rtol=1e-6,
                     mistakes={h: _float64_tensor(v) for h, v in recon_hints.items() if v != recon_expected},
                     where=f"the homework's X and W_{label}")
        expect_close(_float64_tensor(reg), _float64_tensor(reg_expected), "regularization_loss", rtol=1e-6,
                     mistakes={h: _float64_tensor(v) for h, v in reg_hints.items() if v != reg_expected},
                     where=f"the homework's W_{label}")


def crossover_matches_homework(crossover_lambda):
    """Identity vs W_beta: 0 + 2 lam = 0.001 + lam at lam = 0.001, whichever comes first."""
    X, W_a, W_b = _float64_tensor(HOMEWORK_X), _float64_tensor(W_ALPHA), _float64_tensor(W_BETA)
    where = "the homework's X, W_alpha and W_beta"
    for first, second, order in ((W_a, W_b, ""), (W_b, W_a, " (given in the other order)")):
        value = as_float(call(crossover_lambda, "crossover_lambda", first, second, X), "crossover_lambda")
        if abs(value - 1 / HOMEWORK_THRESHOLD) <= 1e-6 / HOMEWORK_THRESHOLD:
            fail(f"`crossover_lambda` is inverted ({where}{order}): the losses are equal where "
                 "(R_a - R_b) + lam (G_a - G_b) = 0, so lam = (R_b - R_a) / (G_a - G_b), the difference in "
                 "reconstruction loss over the difference in regularization loss.")
        if abs(value + HOMEWORK_THRESHOLD) <= 1e-6 * HOMEWORK_THRESHOLD:
            fail(f"`crossover_lambda` has the wrong sign ({where}{order}): one difference is taken "
                 "the other way round; equal losses need (R_a - R_b) + lam (G_a - G_b) = 0.")
        expect(abs(value - HOMEWORK_THRESHOLD) <= 1e-6 * HOMEWORK_THRESHOLD,
               f"`crossover_lambda` returned {value:.6g} ({where}{order}); the identity's loss 0 + 2 lam "
               "and W_beta's 0.001 + lam are equal at one lam: expected 0.001. (It uses your two loss "
               "functions: if question 1 fails, fix those first.)")


# -- question 3: the closed form ------------------------------------------------------------

def _check_purifier(W, X, lam, name, where, dtype):
    m, n = X.shape
    W = as_tensor(W, name)
    if tuple(W.shape) == (n, n) and n != m:
        fail(f"`{name}` returned shape ({n}, {n}) for {m} features and {n} points ({where}): "
             "that is V instead of U. The purifier acts on feature vectors, so it is "
             "U diag(...) U^T with U the left singular vectors, shape (m, m).")
    expect_shape(W, (m, m), name)
    expect(bool(torch.isfinite(W).all()), f"`{name}` returned NaN or infinite values ({where}).")
    residual = gradient_residual(W, X, lam)
    expect(residual <= tolerance(dtype) * 10,
           f"`{name}` does not minimize the regularized loss ({where}): at the minimizer the gradient "
           f"vanishes, W (X X^T + lam I) = X X^T, but for your W the two sides differ by {residual:.2g} "
           "relative to X X^T.")


def purifier_zeroes_the_gradient(optimal_purifier):
    """The minimizer satisfies W (X X^T + lam I) = X X^T; checked on the homework's X and on
    two seeded random matrices (more points than features, and more features than points)."""
    gen = fresh_generator(seed=3103)
    cases = [(_float64_tensor(HOMEWORK_X), 0.01, "the homework's X, lam = 0.01"),
             (torch.randn(3, 7, generator=gen, dtype=F64), 1.5, "m = 3 features, n = 7 points"),
             (torch.randn(4, 2, generator=gen, dtype=F64), 0.8, "m = 4 features, n = 2 points")]
    for X, lam, where in cases:
        W = call(optimal_purifier, "optimal_purifier", X, lam)
        _check_purifier(W, X, lam, "optimal_purifier", where, F64)


# -- question 5: training -------------------------------------------------------------------

def trained_purifier_reaches_minimizer(train_purifier):
    """Gradient descent from W = 0 with settings under which it converges."""
    gen = fresh_generator(seed=3105)
    for m, n, lam in [(3, 6, 1.0), (2, 4, 2.0)]:
        X = torch.randn(m, n, generator=gen, dtype=F64)
        steps, lr = gradient_descent_settings(X, lam)
        W = call(train_purifier, "train_purifier", X, lam, steps, lr)
        W = as_tensor(W, "train_purifier")
        expect_shape(W, (m, m), "train_purifier")
        where = f"m = {m}, n = {n}, lam = {lam}, {steps} steps, lr = {lr:.3g}"
        expect(bool(torch.isfinite(W).all()),
               f"`train_purifier` returned NaN or infinite values ({where}): is the step too large, "
               "or are gradients accumulating (zero them every step)?")
        residual = gradient_residual(W, X, lam)
        if residual > 1e-4:
            if gradient_residual(W, X, lam / 2) <= 1e-3:
                fail(f"`train_purifier` is wrong ({where}): it lands on the minimizer for lam / 2: as torch "
                     "weight decay the penalty lam ||W||_F^2 is weight_decay = 2 lam.")
            if gradient_residual(W, X, 2 * lam) <= 1e-3:
                fail(f"`train_purifier` is wrong ({where}): it lands on the minimizer for 2 lam: "
                     "is the penalty counted twice?")
            if float((W.to(F64) - torch.eye(m, dtype=F64)).norm()) <= 1e-3 * m ** 0.5:
                fail(f"`train_purifier` is wrong ({where}): it is the identity: the penalty lam ||W||_F^2 "
                     "is missing.")
        expect(residual <= 1e-4,
               f"`train_purifier` did not reach the minimizer of ||X - W X||_F^2 + lam ||W||_F^2 ({where}): "
               f"there W (X X^T + lam I) = X X^T, but for your W the two sides differ by {residual:.2g} "
               "relative to X X^T. Start from W = 0, take exactly `steps` steps of size `lr` on the summed "
               "loss, and zero the gradient each step.")


# -- question 6: the design question --------------------------------------------------------

def range_matches_homework(feasible_lambda_range):
    """The homework's numbers give [1, 4]; asking to keep 95% instead makes the range empty."""
    sigmas = _float64_tensor(HOMEWORK_SIGMAS)
    got = call(feasible_lambda_range, "feasible_lambda_range", sigmas, 3, 0.8, 0.5)
    hints = {
        "the inequalities are reversed: s^2 / (s^2 + lam) falls as lam grows, so keeping at least "
        "80% bounds lam from above and attenuating to 50% bounds it from below": None,
        "it uses s instead of s^2 (the strength kept is s^2 / (s^2 + lam))": (1.0, 1.0),
        "or it uses s instead of s^2: then both bounds are 1 and rounding can make them cross; the "
        "strength kept is s^2 / (s^2 + lam)": None,
        "the range is empty here only if lo > hi; (4, 1) looks like the bounds swapped": (4.0, 1.0),
        "the critical singular values are off by one: use the 3rd largest (4) and the 4th (1)": (16.0, 16.0),
        "the factor is inverted: s^2 / (s^2 + lam) >= keep gives lam <= s^2 (1 - keep) / keep": (1.0, 64.0),
    }
    compare_range(got, HOMEWORK_RANGE, "feasible_lambda_range", mistakes=hints, reveal=True,
                  where="the homework's singular values, k = 3, keep = 0.8, attenuate = 0.5")
    got = call(feasible_lambda_range, "feasible_lambda_range", sigmas, 3, 0.95, 0.5)
    compare_range(got, None, "feasible_lambda_range", reveal=True,
                  where="the homework's singular values, k = 3, keep = 0.95, attenuate = 0.5")
