"""Linear purification references (float64), written independently of the master notebook.

The master computes the purifier from an SVD and the feasible range from the two critical
singular values; here the purifier comes from the normal equations and the range from
intersecting every direction's own condition, so a shared slip cannot hide in both.
The mistake models return what a specific wrong implementation would return.
"""
import math

import torch

F64 = torch.float64


def _f64(t):
    return torch.as_tensor(t).detach().to(F64).cpu()


# -- losses ---------------------------------------------------------------------------------

def reconstruction_loss(W, X):
    """sum over entries of (X - W X)^2, with the product written as explicit sums."""
    W, X = _f64(W), _f64(X)
    m, n = X.shape
    total = 0.0
    for i in range(m):
        for j in range(n):
            predicted = sum(float(W[i, p]) * float(X[p, j]) for p in range(m))
            total += (float(X[i, j]) - predicted) ** 2
    return total


def regularization_loss(W):
    """||W||_F^2, summed entry by entry in float64."""
    W = _f64(W)
    return float(sum(float(w) ** 2 for w in W.flatten()))


def reconstruction_mistakes(W, X):
    """{likely mistake: the value it gives} for `reconstruction_loss`."""
    W, X = _f64(W), _f64(X)
    right = reconstruction_loss(W, X)
    m, n = X.shape
    return {
        "the Frobenius norm is not squared: the loss is ||X - W X||_F^2, the sum of the squared "
        "entries, with no square root": math.sqrt(right),
        "it is the mean of the squared entries; the loss is their sum (no division)": right / (m * n),
        "it divides by the number of points n; the loss is the plain sum of squared entries": right / n,
        "W multiplies from the wrong side or transposed: the reconstruction is W X (W acts on "
        "each column of X)": reconstruction_loss(W.T, X),
    }


def regularization_mistakes(W):
    """{likely mistake: the value it gives} for `regularization_loss`."""
    W = _f64(W)
    right = regularization_loss(W)
    return {
        "the Frobenius norm is not squared: the penalty is ||W||_F^2, the sum of the squared "
        "entries, with no square root": math.sqrt(right),
        "it is the mean of the squared entries; the penalty is their sum": right / W.numel(),
        "the entries are not squared: the penalty is the sum of W_ij^2": float(W.sum()),
        "it uses the trace of W; the penalty is the sum of every squared entry": float(W.trace()),
    }


def crossover_lambda(W_a, W_b, X):
    """Where (R_a - R_b) + lam (G_a - G_b) = 0."""
    r_a, r_b = reconstruction_loss(W_a, X), reconstruction_loss(W_b, X)
    g_a, g_b = regularization_loss(W_a), regularization_loss(W_b)
    return (r_b - r_a) / (g_a - g_b)


def crossover_mistakes(W_a, W_b, X):
    """{likely mistake: the value it gives} for `crossover_lambda`."""
    right = crossover_lambda(W_a, W_b, X)
    return {
        "the ratio is inverted: the losses are equal where (R_a - R_b) + lam (G_a - G_b) = 0, so lam is "
        "the difference in reconstruction loss over the difference in regularization loss": 1 / right,
        "the sign is wrong: one of the two differences is taken the other way round": -right,
    }


# -- the optimal purifier -------------------------------------------------------------------

def optimal_purifier(X, lam):
    """The minimizer of ||X - W X||^2 + lam ||W||^2: W (X X^T + lam I) = X X^T, solved directly."""
    X = _f64(X)
    G = X @ X.T
    A = G + float(lam) * torch.eye(X.shape[0], dtype=F64)
    # W A = G with A symmetric  <=>  A W^T = G, so W = (A^-1 G)^T
    return torch.linalg.solve(A, G).T.contiguous()


def _svd_parts(X):
    U, s, Vh = torch.linalg.svd(_f64(X), full_matrices=False)
    return U, s, Vh.T


def purifier_mistakes(X, lam):
    """What common slips return; each value has the shape that slip produces."""
    X, lam = _f64(X), float(lam)
    U, s, V = _svd_parts(X)
    right_shrink = s ** 2 / (s ** 2 + lam)
    m = X.shape[0]
    return {
        "it uses V instead of U (V holds the right singular vectors, one entry per data point): the "
        "purifier acts on feature vectors, so it is U diag(...) U^T, of shape (m, m)":
            (V * right_shrink) @ V.T,
        "the shrinkage uses s instead of s^2: each direction is scaled by s^2 / (s^2 + lam)":
            (U * (s / (s + lam))) @ U.T,
        "the factors are in the wrong order: it is U diag(...) U^T, not U^T diag(...) U":
            U.T @ torch.diag(right_shrink) @ U if U.shape[0] == U.shape[1] else None,
        "it keeps the complement lam / (s^2 + lam): that is I - W, what the purifier removes":
            (U * (lam / (s ** 2 + lam))) @ U.T,
        "the singular values are squared twice: the eigenvalues of X X^T are already s^2, so the "
        "factor is e / (e + lam) for an eigenvalue e":
            (U * (s ** 4 / (s ** 4 + lam))) @ U.T,
        "the shrinkage uses lam^2 instead of lam: each direction is scaled by s^2 / (s^2 + lam)":
            (U * (s ** 2 / (s ** 2 + lam ** 2))) @ U.T if abs(lam - 1.0) > 1e-3 else None,
        "the identity is returned: that is the lam = 0 answer": torch.eye(m, dtype=F64),
    }


def training_mistakes(X, lam):
    """Minimizers of slightly wrong objectives (what a converged wrong training run returns)."""
    X, lam = _f64(X), float(lam)
    m, n = X.shape
    return {
        "it lands on the minimizer for lam / 2: the penalty lam ||W||_F^2 has gradient 2 lam W, so as "
        "torch weight decay it is weight_decay = 2 lam": optimal_purifier(X, lam / 2),
        "it lands on the minimizer for 2 lam: the penalty is counted twice (weight decay 2 lam and "
        "lam ||W||_F^2 in the loss as well?)": optimal_purifier(X, 2 * lam),
        "it lands on the minimizer for a different lam: the reconstruction loss is averaged over the "
        "entries; the loss is the plain sum ||X - W X||_F^2 + lam ||W||_F^2":
            optimal_purifier(X, lam * m * n),
        "it is the identity: the regularization lam ||W||_F^2 is missing from the loss":
            torch.eye(m, dtype=F64),
    }


# -- the design question --------------------------------------------------------------------

def feasible_lambda_range(sigmas, k, keep, attenuate):
    """Intersect every direction's condition on lam >= 0; None when the intersection is empty.

    Direction i (ranked by its singular value, largest first) must satisfy
    s_i^2 / (s_i^2 + lam) >= keep for the k strongest and <= attenuate for the rest.
    """
    values = sorted((float(v) for v in _f64(sigmas).flatten()), reverse=True)
    lo, hi = 0.0, math.inf
    for rank, s in enumerate(values):
        energy = s * s
        if rank < int(k):
            # energy >= keep (energy + lam)  <=>  lam <= energy (1 - keep) / keep
            hi = min(hi, energy * (1.0 - keep) / keep)
        else:
            # energy <= attenuate (energy + lam)  <=>  lam >= energy (1 - attenuate) / attenuate
            lo = max(lo, energy * (1.0 - attenuate) / attenuate)
    return (lo, hi) if lo <= hi else None


def range_mistakes(sigmas, k, keep, attenuate):
    """{likely mistake: the range it gives} for the range of lam question."""
    values = sorted((float(v) for v in _f64(sigmas).flatten()), reverse=True)
    as_given = [float(v) for v in _f64(sigmas).flatten()]
    m = len(values)

    def interval(strong, weak, power=2, keep_factor=None, att_factor=None, closed=True,
                 check_empty=True, swap=False):
        keep_factor = (1 - keep) / keep if keep_factor is None else keep_factor
        att_factor = (1 - attenuate) / attenuate if att_factor is None else att_factor
        hi = math.inf if strong is None else strong ** power * keep_factor
        lo = 0.0 if weak is None else weak ** power * att_factor
        if swap:
            lo, hi = hi, lo
        if not check_empty:
            return (lo, hi)
        if lo < hi or (closed and lo == hi):
            return (lo, hi)
        return None

    kth = values[k - 1] if k >= 1 else None
    next_one = values[k] if k < m else None
    out = {}
    # the slips that only show on some inputs come first, so that their hint wins
    if as_given != values:
        out["the singular values are used in the order given: sort them (largest first) so that "
            "the k directions to keep are the k strongest"] = interval(
                as_given[k - 1] if k >= 1 else None, as_given[k] if k < m else None)
    if k == 0 and m >= 1:
        out["k = 0 is not handled: with nothing to keep there is no upper bound (hi = math.inf); "
            "indexing s[k - 1] with k = 0 picks s[-1], the smallest singular value"] = interval(values[-1], values[0])
    out.update({
        "the inequalities are reversed: s^2 / (s^2 + lam) falls as lam grows, so keeping at least "
        "`keep` bounds lam from above and attenuating to at most `attenuate` bounds it from below":
            interval(kth, next_one, swap=True),
        "it uses s instead of s^2: the strength kept in a direction is s^2 / (s^2 + lam)":
            interval(kth, next_one, power=1),
        "the factor is inverted: s^2 / (s^2 + lam) >= keep gives lam <= s^2 (1 - keep) / keep":
            interval(kth, next_one, keep_factor=keep / (1 - keep) if keep < 1 else math.inf,
                     att_factor=attenuate / (1 - attenuate) if attenuate < 1 else math.inf),
        "the interval is open: a bound that is attained still counts (>= keep and <= attenuate), "
        "so lo == hi is a one-point range, not an empty one": interval(kth, next_one, closed=False),
        "the range is empty here (lo > hi): return None": interval(kth, next_one, check_empty=False),
        "the critical directions are off by one: the binding ones are the k-th largest singular "
        "value (the weakest one to keep) and the (k+1)-th (the strongest one to attenuate)":
            interval(values[k] if k < m else None, values[k + 1] if k + 1 < m else None)
            if 1 <= k else None,
        "the binding directions are the wrong ones: keeping needs the weakest kept direction (the "
        "k-th largest) and attenuating the strongest attenuated one (the (k+1)-th)":
            interval(values[0], values[-1]) if 1 <= k < m else None,
    })
    return out
