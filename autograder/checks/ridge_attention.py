"""Public checks for the ridge-attention assignment: worked examples and definitions.

Every check here compares a student's function with the definition it is meant to compute,
written out directly (a running mean, the ridge normal equations, the inverse of a rank-one
update, a ridge solve on every prefix), so it needs no reference solution. The hidden tests
use fresh random inputs and independent float64 references.
"""
import re

import torch

from .core import STUB_HINT, as_float, as_tensor, call, close, expect, expect_close, expect_shape, fail, fresh_generator
from .trace import expect_countable, grad_call

F64 = torch.float64

# Op names (aten, overloads dropped) that factor, invert or solve with a matrix.
SOLVE_OPS = {
    "_linalg_solve_ex", "linalg_solve_ex", "linalg_solve", "linalg_inv_ex", "linalg_inv", "inverse",
    "linalg_cholesky_ex", "linalg_cholesky", "cholesky", "cholesky_solve", "_cholesky_solve_helper",
    "cholesky_inverse", "linalg_lstsq", "linalg_pinv", "pinverse", "linalg_lu_factor_ex",
    "linalg_lu_factor", "linalg_lu", "lu_unpack", "linalg_lu_solve", "lu_solve", "_linalg_svd",
    "linalg_svd", "svd", "_linalg_eigh", "linalg_eigh", "linalg_eig", "linalg_qr", "geqrf",
    "triangular_solve", "linalg_solve_triangular", "linalg_ldl_factor_ex", "linalg_ldl_solve",
    "_linalg_det", "linalg_det", "det", "linalg_tensorsolve", "linalg_tensorinv",
}

# -- choice questions ------------------------------------------------------------------------------

NONCAUSAL_COST_OPTIONS = ["O(d^4)", "O(n d^2)", "O(n^2 d^3)", "O(n^2 d^2)", "O(n^2)", "O(1)"]
SHERMAN_MORRISON_COST_OPTIONS = ["O(d^4)", "O(d^3)", "O(d^2)", "O(d)", "O(1)"]
CAUSAL_COST_OPTIONS = ["O(n d^2)", "O(n d^3)", "O(n^2 d^2)", "O(n^2 d^3)", "O(n^2)", "O(d^3)"]
GRADIENT_OPTIONS = ["queries", "keys", "values", "scalar"]
GRADIENT_LAYERS = ["ridge", "nearest_neighbor"]

_SUPERSCRIPTS = str.maketrans({"²": "^2", "³": "^3", "⁴": "^4"})
_SYNONYMS = {
    "q": "queries", "query": "queries", "queries": "queries",
    "k": "keys", "key": "keys", "keys": "keys",
    "v": "values", "value": "values", "values": "values",
    "scalar": "scalar", "lam": "scalar", "lambda": "scalar", "λ": "scalar", "tau": "scalar",
    "temperature": "scalar", "τ": "scalar",
}


def parse_cost(text):
    """'O(n d^2)' -> {'n': 1, 'd': 2}; None when the text is not a product of powers of n and d."""
    if not isinstance(text, str):
        return None
    body = text.translate(_SUPERSCRIPTS).replace("**", "^").replace(" ", "").replace("*", "").replace("·", "")
    match = re.fullmatch(r"[oO]\((.*)\)", body)
    body = match.group(1) if match else body
    if body == "1":
        return {}
    if not body or not re.fullmatch(r"(?:[nd](?:\^\d+)?)+", body):
        return None
    powers = {}
    for letter, power in re.findall(r"([nd])(?:\^(\d+))?", body):
        powers[letter] = powers.get(letter, 0) + int(power or 1)
    return powers


def cost_answer_is_an_option(answer, name, options):
    """The answer is one of the listed options (any spacing): a format check, not a grade."""
    if answer is None or answer is Ellipsis:
        fail(f"`{name}` is not set: assign one of the options, e.g. {name} = \"{options[0]}\".")
    expect(isinstance(answer, str), f"`{name}` should be a string such as \"{options[0]}\", "
                                    f"not a {type(answer).__name__}.")
    parsed = parse_cost(answer)
    expect(parsed is not None and parsed in [parse_cost(o) for o in options],
           f"`{name}` = {answer!r} is not one of the options: {', '.join(options)}.")


def _normalize_names(value, layer):
    if isinstance(value, (set, frozenset)):
        fail(f"`gradient_inputs[{layer!r}]` is a set: use a list or a tuple (sets cannot be sent "
             "to the grader).")
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        fail(f"`gradient_inputs[{layer!r}]` should be a list of names from {GRADIENT_OPTIONS}.")
    names = []
    for item in value:
        key = _SYNONYMS.get(str(item).strip().lower()) if isinstance(item, str) else None
        if key is None:
            fail(f"`gradient_inputs[{layer!r}]` contains {item!r}, which is not one of "
                 f"{GRADIENT_OPTIONS}.")
        names.append(key)
    return sorted(set(names))


def parse_gradient_answer(answer):
    """{'ridge': [...], 'nearest_neighbor': [...]} -> the same with canonical, sorted names."""
    if answer is None or answer is Ellipsis:
        fail("`gradient_inputs` is not set: assign a dict with the keys 'ridge' and 'nearest_neighbor'.")
    expect(isinstance(answer, dict), f"`gradient_inputs` should be a dict with the keys {GRADIENT_LAYERS}, "
                                     f"not a {type(answer).__name__}.")
    expect(sorted(answer) == sorted(GRADIENT_LAYERS),
           f"`gradient_inputs` should have exactly the keys {GRADIENT_LAYERS}; it has {sorted(answer)}.")
    return {layer: _normalize_names(answer[layer], layer) for layer in GRADIENT_LAYERS}


def gradient_answer_format(gradient_inputs):
    """`gradient_inputs` has the format the question asks for (its contents are graded by the hidden
    tests)."""
    parse_gradient_answer(gradient_inputs)


def ridge_gradient_answer_matches_autograd(gradient_inputs, ridge_attention):
    """The 'ridge' entry lists exactly the inputs that autograd reaches through your ridge_attention
    (you can watch it in section 2). The nearest-neighbour entry is graded by the hidden tests."""
    answer = parse_gradient_answer(gradient_inputs)
    gen = fresh_generator(seed=408)
    Q, K, V = _random(gen, 3, 4), _random(gen, 6, 4), _random(gen, 6, 2)
    try:
        out, grads = grad_call(ridge_attention, Q, K, V, 0.7, wrt=(0, 1, 2, 3))
    except Exception as error:  # noqa: BLE001 - student code
        fail(f"`ridge_attention` raised an error when run with gradients: {str(error)[:300]}")
    expect(out is not None, "`ridge_attention` is still a stub: implement question 3 first.")
    out = as_tensor(out, "ridge_attention")
    expected = Q @ _normal_equation_solution(K, V, 0.7)
    if not close(out.to(F64), expected, 1e-6):
        fail("`ridge_attention` does not compute ridge attention yet (its output is not Q (K^T K + lam I)^(-1) "
             "K^T V on n_q=3, n=6, d=4, d_v=2): this answer is checked with autograd through a correct "
             "ridge_attention, so fix question 3 first.")
    reached = sorted(name for name, grad in zip(["queries", "keys", "values", "scalar"], grads)
                     if grad is not None and bool(torch.as_tensor(grad).abs().sum() > 0))
    expect(answer["ridge"] == reached,
           f"`gradient_inputs['ridge']` = {answer['ridge']}, but autograd through your ridge_attention reaches "
           f"{reached}. Run the gradient cell in section 2 and compare (and if an input that should get a "
           "gradient does not, fix ridge_attention).")


# -- the warm-up -------------------------------------------------------------------------------------

def update_mean_examples(update_mean):
    """The mean of 2, 4 is 3; adding 9 gives 5. And a running mean of vectors, point by point."""
    got = as_float(call(update_mean, "update_mean", 3.0, 9.0, 2), "update_mean")
    expect_close(torch.tensor(got, dtype=F64), torch.tensor(5.0, dtype=F64), "update_mean",
                 where="the mean of 2 and 4 is 3, and the new point is 9",
                 mistakes={"the old mean stands for n = 2 points; it is not averaged with the new point "
                           "as an equal": torch.tensor(6.0, dtype=F64)})
    gen = fresh_generator(seed=401)
    points = torch.randn(6, 3, generator=gen, dtype=F64)
    mean = points[0]
    for n in range(1, 6):
        mean = as_tensor(call(update_mean, "update_mean", mean, points[n], n), "update_mean")
        expect_close(mean, points[: n + 1].mean(0), "update_mean", dims="D",
                     where=f"vectors of length 3, after {n + 1} points")


def ridge_sums_worked_example(ridge_sums):
    """Three points in 2-D, lam = 0.5, scalar targets: the sums worked out by hand."""
    X = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]], dtype=F64)
    y = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    result = call(ridge_sums, "ridge_sums", X, y, 0.5)
    if result is None:
        fail(f"`ridge_sums`: {STUB_HINT}.")
    expect(isinstance(result, (tuple, list)) and len(result) == 2,
           "`ridge_sums` should return a pair (gram, cross) = (lam I + sum_i x_i x_i^T, sum_i x_i y_i).")
    gram, cross = as_tensor(result[0], "ridge_sums (gram)"), as_tensor(result[1], "ridge_sums (cross)")
    expected_gram = torch.tensor([[2.5, 1.0], [1.0, 5.5]], dtype=F64)
    expect_close(gram, expected_gram, "ridge_sums (gram)", dims="D D",
                 where="the worked example with lam = 0.5",
                 mistakes={"lam I is missing: the first sum is lam I + sum_i x_i x_i^T":
                           expected_gram - 0.5 * torch.eye(2, dtype=F64)})
    expect_close(cross, torch.tensor([3.0, 8.0], dtype=F64), "ridge_sums (cross)", dims="D",
                 where="the worked example with scalar targets y")


# -- ridge attention --------------------------------------------------------------------------------

def _random(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=F64)


def _normal_equation_solution(K, V, lam):
    d = K.shape[-1]
    return torch.linalg.solve(K.transpose(-1, -2) @ K + lam * torch.eye(d, dtype=F64), K.transpose(-1, -2) @ V)


def ridge_attention_solves_normal_equations(ridge_attention):
    """With the basis vectors as queries, the output is the ridge solution W itself, and
    (K^T K + lam I) W = K^T V; any other query q gets q^T W."""
    gen = fresh_generator(seed=402)
    for n, d, d_v, lam in [(4, 4, 2, 0.5), (9, 3, 2, 0.8), (2, 5, 3, 1.5)]:
        K, V = _random(gen, n, d), _random(gen, n, d_v)
        eye = torch.eye(d, dtype=F64)
        W = as_tensor(call(ridge_attention, "ridge_attention", eye, K, V, lam), "ridge_attention")
        expect_shape(W, (d, d_v), "ridge_attention", dims="n_q d_v")
        W = W.to(F64)
        mistakes = {}
        if n == d:
            mistakes["lam was added to K K^T (n x n) instead of K^T K (d x d): the ridge matrix is "
                     "K^T K + lam I"] = torch.linalg.solve(K @ K.T + lam * eye, K.T @ V)
        residual = (K.T @ K + lam * eye) @ W - K.T @ V
        scale = max((K.T @ V).abs().max().item(), 1e-12)
        if not (torch.isfinite(W).all() and residual.abs().max().item() <= 1e-6 * scale):
            expect_close(W, _normal_equation_solution(K, V, lam), "ridge_attention", dims="d d_v",
                         mistakes=mistakes, rtol=1e-6,
                         where=f"queries = the {d} basis vectors, n={n}, d={d}, d_v={d_v}")
        Q = _random(gen, 3, d)
        out = call(ridge_attention, "ridge_attention", Q, K, V, lam)
        expect_close(out, Q @ W, "ridge_attention", dims="n_q d_v", rtol=1e-6,
                     where=f"3 random queries, n={n}, d={d}: each output row should be q^T W")
    expect_countable(ridge_attention, Q, K, V, lam, name="ridge_attention")


def ridge_attention_handles_batches(ridge_attention):
    """Leading dimensions are batch dimensions: each (n_q, d) slice is its own problem, solved
    with the normal equations of its own K, V."""
    gen = fresh_generator(seed=403)
    lam = 0.7
    Q, K, V = _random(gen, 2, 3, 5, 4), _random(gen, 2, 3, 7, 4), _random(gen, 2, 3, 7, 2)
    out = as_tensor(call(ridge_attention, "ridge_attention", Q, K, V, lam), "ridge_attention")
    expect_shape(out, (2, 3, 5, 2), "ridge_attention", dims="B1 B2 n_q d_v")
    expected = Q @ _normal_equation_solution(K, V, lam)
    out = out.to(F64)
    if close(out, expected, 1e-6):
        return
    for i, j in [(0, 0), (1, 2)]:
        single = as_tensor(call(ridge_attention, "ridge_attention", Q[i, j], K[i, j], V[i, j], lam),
                           "ridge_attention")
        if close(single.to(F64), expected[i, j], 1e-6):
            # right on one problem, wrong in a batch: say so
            expect_close(out[i, j], single, "ridge_attention", dims="n_q d_v", rtol=1e-8,
                         where=f"batch entry ({i}, {j}) should equal the unbatched call on that slice")
    expect_close(out, expected, "ridge_attention", dims="B1 B2 n_q d_v", rtol=1e-6,
                 where="leading dims (2, 3), n_q=5, n=7, d=4, d_v=2: each slice should be Q (K^T K + lam I)^(-1) "
                       "K^T V for its own Q, K, V")


# -- Sherman-Morrison ------------------------------------------------------------------------------

def sherman_morrison_inverts_update(sherman_morrison):
    """The result times (M + u v^T) is the identity, for a non-symmetric M."""
    M = torch.tensor([[2.0, 0.5, 0.0], [0.3, 1.5, -0.4], [0.0, 0.2, 1.0]], dtype=F64)
    u = torch.tensor([1.0, -1.0, 0.5], dtype=F64)
    v = torch.tensor([0.5, 2.0, 1.0], dtype=F64)
    M_inv = torch.linalg.inv(M)
    got = call(sherman_morrison, "sherman_morrison", M_inv, u, v)
    a, b = M_inv @ u, v @ M_inv
    denom = 1 + v @ a
    expect_close(got, torch.linalg.inv(M + torch.outer(u, v)), "sherman_morrison", dims="d d", rtol=1e-8,
                 where="a 3 x 3 non-symmetric M",
                 mistakes={
                     "the sign of the correction is wrong: subtract (M^(-1) u)(v^T M^(-1)) / (1 + v^T M^(-1) u)":
                         M_inv + torch.outer(a, b) / denom,
                     "the 1 + is missing from the denominator": M_inv - torch.outer(a, b) / (denom - 1),
                     "u and v are swapped: the left factor is M^(-1) u": M_inv - torch.outer(M_inv @ v, u @ M_inv)
                     / (1 + u @ M_inv @ v),
                 })
    expect_countable(sherman_morrison, M_inv, u, v, name="sherman_morrison")


# -- causal ridge attention -------------------------------------------------------------------------

def prefix_solutions(Q, K, V, lam):
    """Row t: Q[t] (K_t^T K_t + lam I)^(-1) K_t^T V_t over the first t + 1 pairs (the definition)."""
    return torch.stack([Q[t] @ _normal_equation_solution(K[: t + 1], V[: t + 1], lam)
                        for t in range(Q.shape[0])])


def _causal_hints(Q, K, V, lam):
    n = K.shape[0]
    previous = torch.stack([torch.zeros(V.shape[1], dtype=F64)] + [
        Q[t] @ _normal_equation_solution(K[:t], V[:t], lam) for t in range(1, n)])
    return {
        "off by one: row t uses only the pairs before t; it must include pair t itself (pairs 0..t)": previous,
        "every row uses the whole sequence: causal row t may use pairs 0..t only":
            Q @ _normal_equation_solution(K, V, lam),
    }


def causal_matches_prefix_solves(causal_ridge_attention):
    """Each output row of `causal_ridge_attention` is the ridge solve over the keys up to that
    position."""
    gen = fresh_generator(seed=404)
    for n, d, d_v, lam in [(6, 3, 2, 0.5), (3, 5, 4, 2.0), (1, 2, 1, 1.0)]:
        Q, K, V = _random(gen, n, d), _random(gen, n, d), _random(gen, n, d_v)
        got = call(causal_ridge_attention, "causal_ridge_attention", Q, K, V, lam)
        expect_close(got, prefix_solutions(Q, K, V, lam), "causal_ridge_attention", dims="n d_v",
                     rtol=1e-8, mistakes=_causal_hints(Q, K, V, lam),
                     where=f"n={n}, d={d}, d_v={d_v}, lam={lam}")
    Q, K, V = _random(gen, 6, 3), _random(gen, 6, 3), _random(gen, 6, 2)
    expect_countable(causal_ridge_attention, Q, K, V, 0.5, name="causal_ridge_attention")


# -- weights -----------------------------------------------------------------------------------------

def weights_reproduce_outputs(ridge_attention_weights, ridge_attention):
    """A @ V equals ridge_attention(Q, K, V, lam) for random V, and A is the ridge weight matrix."""
    gen = fresh_generator(seed=405)
    Q, K = _random(gen, 4, 3), _random(gen, 6, 3)
    A = as_tensor(call(ridge_attention_weights, "ridge_attention_weights", Q, K, 0.5), "ridge_attention_weights")
    expect_shape(A, (4, 6), "ridge_attention_weights", dims="n_q n")
    definition = Q @ torch.linalg.solve(K.T @ K + 0.5 * torch.eye(3, dtype=F64), K.T)
    expect_close(A, definition, "ridge_attention_weights", dims="n_q n", rtol=1e-8,
                 where="n_q=4, n=6, d=3",
                 mistakes={"the weights were normalized to sum to 1 in each row, like softmax: ridge weights "
                           "are not normalized": definition / definition.sum(-1, keepdim=True)})
    for _ in range(2):
        V = _random(gen, 6, 2)
        out = call(ridge_attention, "ridge_attention", Q, K, V, 0.5)
        expect_close(A.to(F64) @ V, as_tensor(out, "ridge_attention"), "ridge_attention_weights(Q, K, lam) @ V",
                     dims="n_q d_v", rtol=1e-8, where="should equal ridge_attention(Q, K, V, lam)")


# -- chunked causal ridge attention -------------------------------------------------------------------

def _matches_prefix_solves(fn, name, seed, cases, knob, suffix=""):
    """`fn(Q, K, V, lam, extra)` against the prefix solves for each (n, d, d_v, lam, extra) case."""
    gen = fresh_generator(seed=seed)
    for n, d, d_v, lam, extra in cases:
        Q, K, V = _random(gen, n, d), _random(gen, n, d), _random(gen, n, d_v)
        got = call(fn, name, Q, K, V, lam, extra)
        expect_close(got, prefix_solutions(Q, K, V, lam), name, dims="n d_v", rtol=1e-8,
                     mistakes=_causal_hints(Q, K, V, lam), where=f"n={n}, d={d}, d_v={d_v}, {knob}={extra}{suffix}")
    expect_countable(fn, Q, K, V, lam, extra, name=name)


def chunked_matches_prefix_solves(chunked_causal_ridge_attention):
    """`chunked_causal_ridge_attention` gives the prefix ridge solves, for chunk sizes that do and
    do not divide n."""
    _matches_prefix_solves(chunked_causal_ridge_attention, "chunked_causal_ridge_attention", 406,
                           [(10, 3, 2, 0.5, 4), (6, 4, 3, 1.0, 6), (5, 2, 1, 2.0, 1)], "chunk_size")


# -- re-factorized recursion ----------------------------------------------------------------------------

def refactored_matches_prefix_solves(refactored_causal_ridge_attention):
    """`refactored_causal_ridge_attention` gives the prefix ridge solves, whatever `refactor_every` is."""
    _matches_prefix_solves(refactored_causal_ridge_attention, "refactored_causal_ridge_attention", 407,
                           [(10, 3, 2, 0.5, 3), (5, 4, 2, 1.0, 8), (6, 2, 3, 0.3, 1)], "refactor_every",
                           suffix=", float64")
