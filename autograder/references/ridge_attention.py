"""Ridge-attention references in float64, and models of common mistakes.

Written independently of the reference solution: the non-causal outputs use the *dual* (kernel)
form Q K^T (K K^T + lam I_n)^(-1) V, one small problem at a time, which equals the primal
form Q (K^T K + lam I_d)^(-1) K^T V that students implement; the causal version rebuilds the
sums of every prefix from scratch and solves it on its own (no Sherman-Morrison). Everything stays
differentiable so that reference gradients come from autograd through these functions.
"""
import torch

F64 = torch.float64


def _f64(*tensors):
    return [torch.as_tensor(t).detach().to(F64).cpu() if not (isinstance(t, torch.Tensor) and t.requires_grad)
            else t.to(F64) for t in tensors]


def _lam(lam):
    if isinstance(lam, torch.Tensor):
        return lam.to(F64).cpu() if not lam.requires_grad else lam.to(F64)
    return torch.tensor(float(lam), dtype=F64)


# -- warm-up ------------------------------------------------------------------------------------

def running_means(points):
    """[mean of the first k points for k = 1..T] for points (T, ...)."""
    (points,) = _f64(points)
    return torch.stack([points[: k + 1].sum(0) / (k + 1) for k in range(points.shape[0])])


def ridge_sums(X, Y, lam):
    """(lam I + sum_i x_i x_i^T, sum_i x_i y_i^T), one data point at a time."""
    X, Y = _f64(X, Y)
    d = X.shape[1]
    gram = float(lam) * torch.eye(d, dtype=F64)
    cross = torch.zeros((d,) + tuple(Y.shape[1:]), dtype=F64)
    for i in range(X.shape[0]):
        gram = gram + torch.outer(X[i], X[i])
        cross = cross + (X[i] * Y[i] if Y.dim() == 1 else torch.outer(X[i], Y[i]))
    return gram, cross


# -- ridge attention ------------------------------------------------------------------------------

def _dual_single(q, k, v, lam):
    """One (n_q, d), (n, d), (n, d_v) problem in the dual form."""
    n = k.shape[0]
    return q @ k.T @ torch.linalg.solve(k @ k.T + lam * torch.eye(n, dtype=F64), v)


def _dual_weights_single(q, k, lam):
    n = k.shape[0]
    return torch.linalg.solve(k @ k.T + lam * torch.eye(n, dtype=F64), k @ q.T).T


def ridge_attention(Q, K, V, lam):
    """(..., n_q, d_v): loops over the leading dimensions, one dual problem at a time."""
    Q, K, V = _f64(Q, K, V)
    lam = _lam(lam)
    lead = Q.shape[:-2]
    q, k, v = (t.reshape(-1, *t.shape[-2:]) for t in (Q, K, V))
    out = torch.stack([_dual_single(q[i], k[i], v[i], lam) for i in range(q.shape[0])])
    return out.reshape(*lead, Q.shape[-2], V.shape[-1])


def ridge_attention_weights(Q, K, lam):
    """The (..., n_q, n) weights A with ridge_attention = A V, batch by batch, in float64."""
    Q, K = _f64(Q, K)
    lam = _lam(lam)
    lead = Q.shape[:-2]
    q, k = (t.reshape(-1, *t.shape[-2:]) for t in (Q, K))
    out = torch.stack([_dual_weights_single(q[i], k[i], lam) for i in range(q.shape[0])])
    return out.reshape(*lead, Q.shape[-2], K.shape[-2])


def ridge_attention_with_grads(Q, K, V, lam, upstream):
    """The output and d(sum(out * upstream)) / d(Q, K, V, lam), by autograd in float64."""
    leaves = [t.detach().to(F64).cpu().clone().requires_grad_(True) for t in (Q, K, V)]
    lam_leaf = torch.tensor(float(lam), dtype=F64, requires_grad=True)
    out = ridge_attention(*leaves, lam_leaf)
    grads = torch.autograd.grad((out * upstream.to(F64)).sum(), [*leaves, lam_leaf])
    return out.detach(), [g.detach() for g in grads]


def sherman_morrison(M_inv, u, v):
    """(M + u v^T)^(-1) by inverting again from scratch."""
    M_inv, u, v = _f64(M_inv, u, v)
    return torch.linalg.inv(torch.linalg.inv(M_inv) + torch.outer(u, v))


def _prefix_primal(q, k, v, lam):
    """q^T (lam I + k^T k)^(-1) k^T v for one query and the pairs in k, v (possibly none)."""
    d = k.shape[1]
    gram = lam * torch.eye(d, dtype=F64) + k.T @ k
    return q @ torch.linalg.solve(gram, k.T @ v)


def causal_ridge_attention(Q, K, V, lam):
    """Row t: the ridge prediction for Q[t] from pairs 0..t, each prefix's sums rebuilt and solved
    from scratch (O(n^2 d^2) in all: slow, but with no state carried between rows)."""
    Q, K, V = _f64(Q, K, V)
    lam = _lam(lam)
    return torch.stack([_prefix_primal(Q[t], K[: t + 1], V[: t + 1], lam) for t in range(Q.shape[0])])


# -- mistake models: what a specific wrong implementation returns ---------------------------------

def _primal(Q, K, V, gram):
    """Q gram^(-1) K^T V, or None when that mistake's matrix is singular for these inputs."""
    try:
        return Q @ torch.linalg.solve(gram, K.transpose(-1, -2) @ V)
    except RuntimeError:  # torch.linalg.LinAlgError is a RuntimeError
        return None


def update_mean_mistakes(m, x_new, n):
    """{likely mistake: the value it gives} for `update_mean`."""
    m, x_new = _f64(m, x_new)
    return {
        "`n * m + x_new / (n + 1)` divides only x_new: the whole sum n m + x_new is divided by n + 1":
            n * m + x_new / (n + 1),
        "the new mean is not the average of the old mean and the new point; the old mean stands for "
        "n points, so it gets weight n / (n + 1)": (m + x_new) / 2,
        "the sum of n + 1 points is divided by n; divide by n + 1": (n * m + x_new) / n if n else None,
        "x_new / (n + 1) is added without shrinking the old mean: m' = m + (x_new - m) / (n + 1)":
            m + x_new / (n + 1),
    }


def ridge_sums_mistakes(X, Y, lam):
    """{'gram' or 'cross': {likely mistake: the value it gives}} for `ridge_sums`."""
    X, Y = _f64(X, Y)
    gram, cross = ridge_sums(X, Y, lam)
    d = X.shape[1]
    return {
        "gram": {
            "lam I is missing from the first sum: it is lam I + sum_i x_i x_i^T":
                gram - float(lam) * torch.eye(d, dtype=F64),
            "lam was added to every entry; the ridge term is lam times the identity, lam I":
                gram - float(lam) * torch.eye(d, dtype=F64) + float(lam),
            "lam I was added once per data point: it appears once, outside the sum":
                gram + (X.shape[0] - 1) * float(lam) * torch.eye(d, dtype=F64),
        },
        "cross": {
            "the second sum is transposed: sum_i x_i y_i^T has one row per input dimension":
                cross.T if cross.dim() == 2 else None,
        },
    }


def ridge_mistakes(Q, K, V, lam):
    """Hint -> output, for ridge_attention(Q, K, V, lam); None where the mistake has no meaning."""
    Q, K, V = _f64(Q, K, V)
    lam = float(lam)
    n, d = K.shape[-2], K.shape[-1]
    eye_d = torch.eye(d, dtype=F64)
    KtK = K.transpose(-1, -2) @ K
    out = {}
    if n == d:
        out["lam was added to K K^T (n x n) instead of K^T K (d x d): the ridge matrix is "
            "K^T K + lam I"] = _primal(Q, K, V, K @ K.transpose(-1, -2) + lam * eye_d)
    if n >= d:
        out["the ridge term lam I is missing: use K^T K + lam I"] = _primal(Q, K, V, KtK)
    out["lam is squared: the ridge matrix is K^T K + lam I, not K^T K + lam^2 I"] = _primal(
        Q, K, V, KtK + lam ** 2 * eye_d)
    out["lam was added to every entry of K^T K; add lam times the identity"] = _primal(
        Q, K, V, KtK + lam)
    out["the matrix K^T K + lam I multiplies instead of being inverted: solve with it"] = (
        Q @ (KtK + lam * eye_d) @ K.transpose(-1, -2) @ V)
    out["the output is linear attention Q K^T V; the ridge solution needs the inverse of "
        "K^T K + lam I in between"] = Q @ K.transpose(-1, -2) @ V
    return out


def weights_mistakes(Q, K, lam):
    """{likely mistake: the weights it gives} for `ridge_attention_weights`."""
    Q, K = _f64(Q, K)
    right = ridge_attention_weights(Q, K, lam)
    n, d = K.shape[-2], K.shape[-1]
    out = {
        "the weights were normalized to sum to 1 in each row, like softmax: ridge weights are not "
        "normalized (they can be negative and need not sum to 1)": right / right.sum(-1, keepdim=True),
        "these are unnormalized linear-attention weights Q K^T; ridge weights are "
        "Q (K^T K + lam I)^(-1) K^T": Q @ K.transpose(-1, -2),
    }
    if n == d:
        eye = torch.eye(n, dtype=F64)
        out["lam was added to K K^T instead of K^T K: the weights are Q (K^T K + lam I)^(-1) K^T"] = (
            Q @ torch.linalg.solve(K @ K.transpose(-1, -2) + float(lam) * eye, K.transpose(-1, -2)))
    # (K K^T + lam I is positive definite for lam > 0, so this solve cannot fail)
    return out


def sherman_morrison_mistakes(M_inv, u, v):
    """{likely mistake: the matrix it gives} for `sherman_morrison`."""
    M_inv, u, v = _f64(M_inv, u, v)
    a, b = M_inv @ u, v @ M_inv
    denom = 1 + v @ M_inv @ u
    return {
        "the sign of the correction is wrong: (M + u v^T)^(-1) = M^(-1) - (M^(-1) u)(v^T M^(-1)) / "
        "(1 + v^T M^(-1) u)": M_inv + torch.outer(a, b) / denom,
        "the 1 + is missing from the denominator: divide by 1 + v^T M^(-1) u": M_inv - torch.outer(a, b) / (denom - 1),
        "u and v are swapped: the left factor is M^(-1) u and the right factor is v^T M^(-1)":
            M_inv - torch.outer(M_inv @ v, u @ M_inv) / (1 + u @ M_inv @ v),
        "v^T M^(-1) is a row vector, v @ M_inv (= M_inv^T v); M_inv @ v differs when M is not symmetric":
            M_inv - torch.outer(a, M_inv @ v) / denom,
        "the correction is not divided by 1 + v^T M^(-1) u": M_inv - torch.outer(a, b),
    }


def _sm_recursion(Q, K, V, lam, sign=-1.0, start=None, plus_one=True):
    """The Sherman-Morrison recursion with knobs for the classic mistakes."""
    d = K.shape[1]
    P = torch.eye(d, dtype=F64) / lam if start is None else start.clone()
    S = torch.zeros(d, V.shape[1], dtype=F64)
    rows = []
    for t in range(K.shape[0]):
        k = K[t]
        Pk = P @ k
        P = P + sign * torch.outer(Pk, k @ P) / ((1.0 if plus_one else 0.0) + k @ Pk)
        S = S + torch.outer(k, V[t])
        rows.append(Q[t] @ P @ S)
    return torch.stack(rows)


def causal_mistakes(Q, K, V, lam):
    """{likely mistake: the output it gives} for the causal ridge attention functions."""
    Q, K, V = _f64(Q, K, V)
    lam = float(lam)
    n, d = K.shape
    previous = [_prefix_primal(Q[t], K[:t], V[:t], lam) for t in range(n)]
    ahead = [_prefix_primal(Q[t], K[: t + 2], V[: t + 2], lam) for t in range(n)]
    out = {
        "off by one: row t uses only the pairs before t; it must include pair t itself (pairs 0..t)":
            torch.stack(previous),
        "off by one: row t also uses pair t + 1 (a future pair); it may use pairs 0..t only":
            torch.stack(ahead),
        "every row uses the whole sequence: causal row t may use pairs 0..t only": ridge_attention(Q, K, V, lam),
        "the sign of the Sherman-Morrison correction is wrong: subtract (P k)(k^T P) / (1 + k^T P k)":
            _sm_recursion(Q, K, V, lam, sign=+1.0),
        "the Sherman-Morrison denominator lacks the 1 +: divide by 1 + k^T P k":
            _sm_recursion(Q, K, V, lam, plus_one=False),
        "the recursion starts from the wrong matrix: before any pair, P = (lam I)^(-1) = I / lam":
            _sm_recursion(Q, K, V, lam, start=torch.eye(d, dtype=F64)),
        "the recursion starts from lam I; (lam I)^(-1) = I / lam":
            _sm_recursion(Q, K, V, lam, start=lam * torch.eye(d, dtype=F64)),
    }
    if abs(lam - 1.0) < 1e-12:
        out.pop("the recursion starts from the wrong matrix: before any pair, P = (lam I)^(-1) = I / lam")
        out.pop("the recursion starts from lam I; (lam I)^(-1) = I / lam")
    return out
