"""Known mistakes and correct alternatives for ridge_attention."""
from tests.notebooks import Mutant, Variant

REFERENCE_CHUNKED = '''
def chunked_causal_ridge_attention(Q, K, V, lam, chunk_size):
    n, d = K.shape
    P = torch.eye(d, dtype=K.dtype, device=K.device) / lam
    W = K.new_zeros(d, V.shape[-1])
    outputs = []
    for start in range(0, n, chunk_size):
        Qc, Kc, Vc = Q[start : start + chunk_size], K[start : start + chunk_size], V[start : start + chunk_size]
        c = Kc.shape[0]
        KP = Kc @ P
        A = torch.eye(c, dtype=K.dtype, device=K.device) + KP @ Kc.T
        L = torch.linalg.cholesky(A)
        R = Vc - Kc @ W
        H = torch.tril((Qc @ P) @ Kc.T)
        Z = torch.linalg.solve_triangular(L, R, upper=False)
        Y = torch.linalg.solve_triangular(L, H.T, upper=False)
        outputs.append(Qc @ W + torch.tril(Y.T) @ Z)
        P = P - KP.T @ torch.cholesky_solve(KP, L)
        W = W + P @ (Kc.T @ R)
    return torch.cat(outputs)
'''


def _causal(update_then_answer=True, sign="-", start="torch.eye(d, dtype=K.dtype) / lam"):
    body = f'''
def causal_ridge_attention(Q, K, V, lam):
    n, d = K.shape
    P = {start}
    S = K.new_zeros(d, V.shape[-1])
    rows = []
    for t in range(n):
        {{first}}
        {{second}}
    return torch.stack(rows)
'''
    update = "P = sherman_morrison(P, K[t], K[t]); S = S + torch.outer(K[t], V[t])"
    answer = "rows.append((P @ Q[t]) @ S)"
    first, second = (update, answer) if update_then_answer else (answer, update)
    return body.format(first=first, second=second)


def _sherman_morrison(expression):
    return f'''
def sherman_morrison(M_inv, u, v):
    left = M_inv @ u
    right = v @ M_inv
    return {expression}
'''


MUTANTS = [
    Mutant("update_mean_parentheses", "n * m + x_new / (n + 1): only the new point is divided", {"update_mean": '''
def update_mean(m, x_new, n):
    return n * m + x_new / (n + 1)
'''}, loses=["q1"], keeps=["q2", "q3", "q4", "q5"], says="divides only x_new"),
    Mutant("ridge_sums_without_lam", "lam I left out of the Gram sum", {"ridge_sums": '''
def ridge_sums(X, Y, lam):
    gram = sum(torch.outer(x, x) for x in X)
    cross = sum((x * y if Y.dim() == 1 else torch.outer(x, y)) for x, y in zip(X, Y))
    return gram, cross
'''}, loses=["q2"], keeps=["q1", "q3"], says="lam I is missing"),
    Mutant("ridge_lam_on_KKt", "lam added to the n x n matrix K K^T instead of K^T K", {"ridge_attention": '''
def ridge_attention(Q, K, V, lam):
    Kt = K.transpose(-1, -2)
    n = K.shape[-2]
    return Q @ torch.linalg.solve(K @ Kt + lam * torch.eye(n, dtype=K.dtype), Kt @ V)
'''}, loses=["q3"], keeps=["q4", "q5", "q10", "q12"], says="instead of K^T K"),
    Mutant("ridge_push_through_dual", "right numbers through the n x n matrix K K^T + lam I", {"ridge_attention": '''
def ridge_attention(Q, K, V, lam):
    Kt = K.transpose(-1, -2)
    n = K.shape[-2]
    return Q @ Kt @ torch.linalg.solve(K @ Kt + lam * torch.eye(n, dtype=K.dtype, device=K.device), V)
'''}, loses=["q3"], keeps=["q4", "q5", "q7", "q10", "q12"], says="an n x n matrix"),
    Mutant("ridge_lam_as_float", "lam turned into a Python float: no gradient reaches it", {"ridge_attention": '''
def ridge_attention(Q, K, V, lam):
    lam = float(lam)
    Kt = K.transpose(-1, -2)
    ridge = Kt @ K + lam * torch.eye(K.shape[-1], dtype=K.dtype)
    return Q @ torch.linalg.solve(ridge, Kt @ V)
'''}, loses=["q3"], keeps=["q4", "q5", "q7", "q10", "q12"], says="no gradient reached lam"),
    Mutant("ridge_unbatched", "K.T: only works without leading dimensions", {"ridge_attention": '''
def ridge_attention(Q, K, V, lam):
    ridge = K.T @ K + lam * torch.eye(K.shape[-1], dtype=K.dtype)
    return Q @ torch.linalg.solve(ridge, K.T @ V)
'''}, loses=["q3"], keeps=["q4", "q5"], says="leading (batch) dimensions"),
    Mutant("sherman_morrison_sign", "the correction is added instead of subtracted", {
        "sherman_morrison": _sherman_morrison("M_inv + torch.outer(left, right) / (1 + v @ left)")},
        loses=["q4", "q5"], keeps=["q3", "q7"], says="sign of the correction is wrong"),
    Mutant("sherman_morrison_column_right", "M_inv @ v used for the row v^T M^-1 (fine only for symmetric M)", {
        "sherman_morrison": _sherman_morrison("M_inv - torch.outer(left, M_inv @ v) / (1 + v @ left)")},
        loses=["q4"], keeps=["q5"], says="row vector"),
    Mutant("sherman_morrison_cubic", "right numbers through M^-1 (u v^T) M^-1: two d x d products, O(d^3)", {
        "sherman_morrison": _sherman_morrison("M_inv - M_inv @ torch.outer(u, v) @ M_inv / (1 + v @ left)")},
        loses=["q4"], keeps=["q3", "q5", "q10"], says="which costs O(d^3)"),
    Mutant("chunked_is_the_recursion", "the chunked function calls the position-by-position recursion", {
        "chunked_causal_ridge_attention": '''
def chunked_causal_ridge_attention(Q, K, V, lam, chunk_size):
    return causal_ridge_attention(Q, K, V, lam)
'''}, loses=["q12"], keeps=["q5", "q10"], says="It still works position by position"),
    Mutant("causal_answers_before_update", "off by one: query t answered before pair t is added", {
        "causal_ridge_attention": _causal(update_then_answer=False)},
        loses=["q5"], keeps=["q4", "q12"], says="include pair t itself"),
    Mutant("causal_peeks_ahead", "off by one: row t also uses pair t + 1", {"causal_ridge_attention": '''
def causal_ridge_attention(Q, K, V, lam):
    n, d = K.shape
    P = torch.eye(d, dtype=K.dtype) / lam
    S = K.new_zeros(d, V.shape[-1])
    P = sherman_morrison(P, K[0], K[0]); S = S + torch.outer(K[0], V[0])
    rows = []
    for t in range(n):
        if t + 1 < n:
            P = sherman_morrison(P, K[t + 1], K[t + 1]); S = S + torch.outer(K[t + 1], V[t + 1])
        rows.append((P @ Q[t]) @ S)
    return torch.stack(rows)
'''}, loses=["q5"], says="future", keeps=["q1", "q2", "q3", "q4", "q7", "q9", "q10", "q12"]),
    Mutant("causal_starts_from_identity", "recursion starts from I instead of (lam I)^-1 = I / lam", {
        "causal_ridge_attention": _causal(start="torch.eye(d, dtype=K.dtype)")},
        loses=["q5"], says="I / lam", keeps=["q1", "q2", "q3", "q4", "q7", "q9", "q10", "q12"]),
    Mutant("causal_solves_every_prefix", "right numbers, but a d x d solve at every step",
           {"causal_ridge_attention": '''
def causal_ridge_attention(Q, K, V, lam):
    n, d = K.shape
    gram = lam * torch.eye(d, dtype=K.dtype)
    S = K.new_zeros(d, V.shape[-1])
    rows = []
    for t in range(n):
        gram = gram + torch.outer(K[t], K[t])
        S = S + torch.outer(K[t], V[t])
        rows.append(Q[t] @ torch.linalg.solve(gram, S))
    return torch.stack(rows)
'''}, loses=["q5"], keeps=["q1", "q2", "q3", "q4", "q7", "q9", "q12"], says="solves a d x d system at every step"),
    Mutant("causal_batched_prefix_solves", "every prefix at once: cumulative sums and n batched solves, O(n d^3)", {
        "causal_ridge_attention": '''
def causal_ridge_attention(Q, K, V, lam):
    d = K.shape[1]
    grams = lam * torch.eye(d, dtype=K.dtype) + torch.cumsum(K[:, :, None] * K[:, None, :], dim=0)
    crosses = torch.cumsum(K[:, :, None] * V[:, None, :], dim=0)
    return (Q[:, None, :] @ torch.linalg.solve(grams, crosses))[:, 0]
'''}, loses=["q5"], keeps=["q4"], says="does not make a pass over the sequence"),
    Mutant("weights_transposed", "weights returned as (n, n_q)", {"ridge_attention_weights": '''
def ridge_attention_weights(Q, K, lam):
    Kt = K.transpose(-1, -2)
    ridge = Kt @ K + lam * torch.eye(K.shape[-1], dtype=K.dtype)
    return (Q @ torch.linalg.solve(ridge, Kt)).transpose(-1, -2)
'''}, loses=["q7"], keeps=["q3", "q5"], says="wrong order"),
    Mutant("weights_normalized", "ridge weights normalized to sum to one like softmax", {"ridge_attention_weights": '''
def ridge_attention_weights(Q, K, lam):
    Kt = K.transpose(-1, -2)
    ridge = Kt @ K + lam * torch.eye(K.shape[-1], dtype=K.dtype)
    A = Q @ torch.linalg.solve(ridge, Kt)
    return A / A.sum(-1, keepdim=True)
'''}, loses=["q7"], says="not normalized", keeps=["q1", "q2", "q3", "q4", "q5", "q9", "q10", "q12"]),
    Mutant("choices_all_inputs_everywhere", "guesses that every input gets a gradient in both layers", {
        "chunked_causal_ridge_attention": REFERENCE_CHUNKED + '''
gradient_inputs = {"ridge": ["queries", "keys", "values", "scalar"],
                   "nearest_neighbor": ["queries", "keys", "values", "scalar"]}
'''}, loses=["q9"], keeps=["q10", "q12"], says="not right for: nearest_neighbor"),
    Mutant("refactor_never", "the plain recursion: refactor_every is ignored", {"refactored_causal_ridge_attention": '''
def refactored_causal_ridge_attention(Q, K, V, lam, refactor_every):
    return causal_ridge_attention(Q, K, V, lam)
'''}, loses=["q10"], keeps=["q5", "q12"], says="off by"),
    Mutant("refactor_every_step", "a fresh inverse at every position", {"refactored_causal_ridge_attention": '''
def refactored_causal_ridge_attention(Q, K, V, lam, refactor_every):
    n, d = K.shape
    gram = lam * torch.eye(d, dtype=torch.float64)
    S = torch.zeros(d, V.shape[-1], dtype=torch.float64)
    rows = []
    for t in range(n):
        k = K[t].double()
        gram = gram + torch.outer(k, k)
        S = S + torch.outer(k, V[t].double())
        rows.append((Q[t].double() @ torch.linalg.inv(gram) @ S).to(K.dtype))
    return torch.stack(rows)
'''}, loses=["q10"], keeps=["q5"], says="at every step"),
    Mutant("chunked_solves_per_row", "a chunk that solves each row's leading block separately", {
        "chunked_causal_ridge_attention": '''
def chunked_causal_ridge_attention(Q, K, V, lam, chunk_size):
    n, d = K.shape
    P = torch.eye(d, dtype=K.dtype) / lam
    W = K.new_zeros(d, V.shape[-1])
    outputs = []
    for start in range(0, n, chunk_size):
        Qc, Kc, Vc = Q[start:start + chunk_size], K[start:start + chunk_size], V[start:start + chunk_size]
        c = Kc.shape[0]
        A = torch.eye(c, dtype=K.dtype) + Kc @ P @ Kc.T
        R = Vc - Kc @ W
        H = (Qc @ P) @ Kc.T
        for i in range(c):
            outputs.append(Qc[i] @ W + H[i, :i + 1] @ torch.linalg.solve(A[:i + 1, :i + 1], R[:i + 1]))
        P = P - (Kc @ P).T @ torch.linalg.solve(A, Kc @ P)
        W = W + P @ (Kc.T @ R)
    return torch.stack(outputs)
'''}, loses=["q12"], keeps=["q5", "q10"], says="solves per position"),
    Mutant("ridge_in_numpy", "right numbers computed in numpy: autograd cannot run through it", {"ridge_attention": '''
def ridge_attention(Q, K, V, lam):
    import numpy as np
    q, k, v = Q.numpy(), K.numpy(), V.numpy()
    kt = np.swapaxes(k, -1, -2)
    W = np.linalg.solve(kt @ k + float(lam) * np.eye(k.shape[-1]), kt @ v)
    return torch.from_numpy(q @ W)
'''}, loses=["q3"], keeps=["q4", "q5"], says="works without gradients but raises when its inputs require gradients"),
]

VARIANTS = [
    Variant("inverse_loops_and_rls",
            "explicit inverse, a loop over leading dims, einsum, the RLS form of the recursion", {
        "update_mean": '''
def update_mean(m, x_new, n):
    return m + (x_new - m) / (n + 1)
''',
        "ridge_sums": '''
def ridge_sums(X, Y, lam):
    gram = torch.einsum("ni,nj->ij", X, X) + lam * torch.eye(X.shape[1], dtype=X.dtype)
    cross = torch.einsum("ni,n...->i...", X, Y)
    return gram, cross
''',
        "ridge_attention": '''
def ridge_attention(Q, K, V, lam):
    lead = Q.shape[:-2]
    q, k, v = Q.reshape(-1, *Q.shape[-2:]), K.reshape(-1, *K.shape[-2:]), V.reshape(-1, *V.shape[-2:])
    eye = torch.eye(K.shape[-1], dtype=K.dtype)
    outs = [q[i] @ torch.linalg.inv(k[i].T @ k[i] + lam * eye) @ (k[i].T @ v[i]) for i in range(q.shape[0])]
    return torch.stack(outs).reshape(*lead, Q.shape[-2], V.shape[-1])
''',
        "sherman_morrison": '''
def sherman_morrison(M_inv, u, v):
    left = torch.einsum("ij,j->i", M_inv, u)
    right = torch.einsum("i,ij->j", v, M_inv)
    return M_inv - torch.einsum("i,j->ij", left, right) / (1.0 + torch.dot(v, left))
''',
        "causal_ridge_attention": '''
def causal_ridge_attention(Q, K, V, lam):
    # recursive least squares: carry P and the solution W = P S, corrected by each residual
    n, d = K.shape
    P = torch.eye(d, dtype=K.dtype) / lam
    W = torch.zeros(d, V.shape[1], dtype=K.dtype)
    out = torch.empty(n, V.shape[1], dtype=K.dtype)
    for t in range(n):
        k = K[t]
        P = sherman_morrison(P, k, k)
        W = W + torch.outer(P @ k, V[t] - k @ W)
        out[t] = Q[t] @ W
    return out
''',
        "ridge_attention_weights": '''
def ridge_attention_weights(Q, K, lam):
    Kt = K.transpose(-1, -2)
    L = torch.linalg.cholesky(Kt @ K + lam * torch.eye(K.shape[-1], dtype=K.dtype))
    return Q @ torch.cholesky_solve(Kt, L)
'''}),
    Variant("lstsq_cholesky_refactor", "augmented least squares, Cholesky, float64 inside, periodic re-factorization", {
        "ridge_attention": '''
def ridge_attention(Q, K, V, lam):
    # ridge = least squares on K stacked over sqrt(lam) I, with targets V stacked over zeros
    d = K.shape[-1]
    lam = torch.as_tensor(lam, dtype=K.dtype)
    rows = torch.sqrt(lam) * torch.eye(d, dtype=K.dtype).expand(*K.shape[:-2], d, d)
    A = torch.cat([K, rows], dim=-2)
    B = torch.cat([V, V.new_zeros(*V.shape[:-2], d, V.shape[-1])], dim=-2)
    return Q @ torch.linalg.lstsq(A, B).solution
''',
        "sherman_morrison": '''
def sherman_morrison(M_inv, u, v):
    col = M_inv @ u[:, None]
    row = v[None, :] @ M_inv
    return M_inv - (col @ row) / (1 + row @ u[:, None])
''',
        "causal_ridge_attention": '''
def causal_ridge_attention(Q, K, V, lam, refactor_every=16):
    dtype = K.dtype
    Q, K, V = Q.double(), K.double(), V.double()
    n, d = K.shape
    gram = lam * torch.eye(d)
    P = torch.linalg.inv(gram)
    S = torch.zeros(d, V.shape[1])
    rows = []
    for t in range(n):
        P = sherman_morrison(P, K[t], K[t])
        gram = gram + torch.outer(K[t], K[t])
        S = S + torch.outer(K[t], V[t])
        if (t + 1) % refactor_every == 0:
            P = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        rows.append((P @ Q[t]) @ S)
    return torch.stack(rows).to(dtype)
''',
        "ridge_attention_weights": '''
def ridge_attention_weights(Q, K, lam):
    Kt = K.mT
    return Q @ torch.linalg.inv(Kt @ K + lam * torch.eye(K.shape[-1], dtype=K.dtype)) @ Kt
''',
        "refactored_causal_ridge_attention": '''
def refactored_causal_ridge_attention(Q, K, V, lam, refactor_every):
    # the RLS form; a refresh recomputes both P and the solution W from the float64 sums
    n, d = K.shape
    G = lam * torch.eye(d, dtype=torch.float64)
    S = torch.zeros(d, V.shape[1], dtype=torch.float64)
    P = torch.eye(d, dtype=K.dtype) / lam
    W = torch.zeros(d, V.shape[1], dtype=K.dtype)
    out = []
    for t in range(n):
        k = K[t]
        P = sherman_morrison(P, k, k)
        W = W + torch.outer(P @ k, V[t] - k @ W)
        kd = k.double()
        G = G + torch.outer(kd, kd)
        S = S + torch.outer(kd, V[t].double())
        if (t + 1) % refactor_every == 0:
            L = torch.linalg.cholesky(G)
            P = torch.cholesky_inverse(L).to(K.dtype)
            W = torch.cholesky_solve(S, L).to(K.dtype)
        out.append(Q[t] @ W)
    return torch.stack(out)
''',
        "chunked_causal_ridge_attention": '''
def chunked_causal_ridge_attention(Q, K, V, lam, chunk_size):
    # carries P and the plain sum S; the chunk's rows correct q^T P S with their leading blocks
    n, d = K.shape
    P = torch.eye(d, dtype=K.dtype) / lam
    S = torch.zeros(d, V.shape[1], dtype=K.dtype)
    pieces = []
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        Qc, Kc, Vc = Q[start:stop], K[start:stop], V[start:stop]
        c = stop - start
        W = P @ S
        L = torch.linalg.cholesky(torch.eye(c, dtype=K.dtype) + Kc @ P @ Kc.T)
        mask = torch.ones(c, c, dtype=torch.bool).tril()
        H = torch.where(mask, Qc @ P @ Kc.T, torch.zeros((), dtype=K.dtype))
        Z = torch.linalg.solve_triangular(L, Vc - Kc @ W, upper=False)
        Y = torch.linalg.solve_triangular(L, H.T, upper=False)
        pieces.append(Qc @ W + torch.where(mask, Y.T, torch.zeros((), dtype=K.dtype)) @ Z)
        G = torch.linalg.solve_triangular(L, Kc @ P, upper=False)
        P = P - G.T @ G
        S = S + Kc.T @ Vc
    return torch.cat(pieces)
'''}),
    Variant("cholesky_batched", "ridge attention through a batched Cholesky factorization, K^T V multiplied first", {
        "ridge_attention": '''
def ridge_attention(Q, K, V, lam):
    Kt = K.mT
    L = torch.linalg.cholesky(Kt @ K + lam * torch.eye(K.shape[-1], dtype=K.dtype, device=K.device))
    return Q @ torch.cholesky_solve(Kt @ V, L)
'''}),
]
