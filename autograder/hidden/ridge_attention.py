"""Hidden checks for ridge attention: fresh inputs, float64 references, gradients, op counts."""
import torch

from ..checks.core import (
    StudentCodeError,
    as_float,
    as_tensor,
    call,
    dtype_name,
    expect,
    expect_close,
    expect_shape,
    fail,
    fresh_generator,
)
from ..checks.ridge_attention import (
    CAUSAL_COST_OPTIONS,
    NONCAUSAL_COST_OPTIONS,
    SHERMAN_MORRISON_COST_OPTIONS,
    SOLVE_OPS,
    cost_answer_is_an_option,
    parse_cost,
    parse_gradient_answer,
)
from ..checks.trace import grad_call, traced_call
from ..references import ridge_attention as ref

F64, F32 = torch.float64, torch.float32


def _randn(gen, *shape, dtype=F64):
    return torch.randn(*shape, generator=gen, dtype=F64).to(dtype)


# -- warm-up ---------------------------------------------------------------------------------------

def update_mean_on_fresh_streams(update_mean):
    """Feed a stream point by point, starting from n = 0, and compare every running mean."""
    gen = fresh_generator()
    for shape, dtype in [((), F64), ((4,), F64), ((2, 3), F32)]:
        points = _randn(gen, 9, *shape, dtype=dtype) + 1.5
        expected = ref.running_means(points)
        mean = torch.zeros(shape, dtype=dtype)
        for n in range(points.shape[0]):
            where = (f"points of shape {tuple(shape)}, {dtype_name(dtype)}, the mean of {n} points "
                     f"updated with point {n + 1}")
            got = call(update_mean, "update_mean", mean, points[n], n, where=where)
            expect_close(got, expected[n], "update_mean", input_dtype=dtype,
                         mistakes=ref.update_mean_mistakes(mean, points[n], n), where=where)
            mean = as_tensor(got, "update_mean").to(dtype).reshape(shape)
    # plain Python numbers work too
    got = as_float(call(update_mean, "update_mean", 2.5, -1.0, 5, where="Python floats, n = 5"), "update_mean")
    expect_close(torch.tensor(got, dtype=F64), torch.tensor((2.5 * 5 - 1.0) / 6, dtype=F64),
                 "update_mean", where="Python floats, n = 5")


def ridge_sums_on_fresh_data(ridge_sums):
    """`ridge_sums` matches the reference on fresh data, scalar and vector targets."""
    gen = fresh_generator()
    for n, d, d_v, lam, dtype in [(7, 3, None, 0.4, F64), (5, 4, 2, 1.7, F64), (3, 5, 6, 0.9, F32),
                                  (1, 2, 3, 2.0, F64)]:
        X = _randn(gen, n, d, dtype=dtype)
        Y = _randn(gen, n, dtype=dtype) if d_v is None else _randn(gen, n, d_v, dtype=dtype)
        where = f"n={n}, d={d}, " + ("scalar targets" if d_v is None else f"targets of size {d_v}") + \
                f", {dtype_name(dtype)}"
        result = call(ridge_sums, "ridge_sums", X, Y, lam, where=where)
        expect(isinstance(result, (tuple, list)) and len(result) == 2,
               "`ridge_sums` should return a pair (gram, cross).")
        gram, cross = ref.ridge_sums(X, Y, lam)
        hints = ref.ridge_sums_mistakes(X, Y, lam)
        expect_close(result[0], gram, "ridge_sums (gram)", dims="D D", input_dtype=dtype,
                     mistakes=hints["gram"], where=where)
        expect_close(result[1], cross, "ridge_sums (cross)", dims="D" if d_v is None else "D Dv", input_dtype=dtype,
                     mistakes=hints["cross"], where=where)


# -- ridge attention -----------------------------------------------------------------------------------

# (leading dims, n_q, n, d, d_v, lam, dtype, lam as a tensor?)
RIDGE_CASES = [
    ((), 5, 5, 5, 5, 0.7, F64, False),        # n == d: tells K K^T from K^T K
    ((2,), 6, 9, 4, 3, 0.5, F64, False),      # n_q != n, d_v != d
    ((), 4, 3, 6, 2, 0.8, F64, True),         # n < d: the ridge term matters
    ((3,), 5, 12, 4, 4, 1e-3, F64, False),    # small lam
    ((2, 3), 4, 10, 3, 5, 1.3, F32, False),   # two leading dims, float32
    ((), 1, 1, 3, 2, 0.6, F64, True),         # a single pair and a single query (float64: q.k may cancel)
    ((2,), 7, 20, 5, 1, 2.5, F64, False),     # scalar values
]


def _describe(lead, n_q, n, d, d_v, lam, dtype):
    batch = f"leading dims {tuple(lead)}, " if lead else ""
    return f"{batch}n_q={n_q}, n={n}, d={d}, d_v={d_v}, lam={lam:g}, {dtype_name(dtype)}"


def _ridge_inputs(gen, lead, n_q, n, d, d_v, dtype):
    return (_randn(gen, *lead, n_q, d, dtype=dtype), _randn(gen, *lead, n, d, dtype=dtype),
            _randn(gen, *lead, n, d_v, dtype=dtype))


def _raised(name, error, where=None):
    context = f" (inputs: {where})" if where else ""
    if isinstance(error, StudentCodeError):
        fail(f"`{name}` raised an error{context}: {error}")
    fail(f"`{name}` raised {type(error).__name__}{context}: {error}")


def _batched_failure(fn, name, args, extra=()):
    """When a batched call raised, tell whether the function handles a single problem."""
    Q = args[0]
    if Q.dim() <= 2:
        return
    single = [a[(0,) * (Q.dim() - 2)] for a in args] + list(extra)
    try:
        fn(*single)
    except Exception:  # noqa: BLE001 - it fails unbatched too; the plain error is clearer
        return
    fail(f"`{name}` works on a single problem but fails with leading (batch) dimensions: use "
         "K.transpose(-1, -2) (or K.mT) instead of K.T, and matrix products that broadcast (@, torch.matmul).")


def _error_text(error):
    text = str(error)[:400] if isinstance(error, StudentCodeError) else f"{type(error).__name__}: {str(error)[:400]}"
    return text.rstrip(". ")


def _gradient_failure(fn, name, args, lam, error, where):
    """The call under autograd raised: find out whether gradients, a tensor lam or batching is
    the cause, by repeating the same call without gradients (and then with a plain tensor lam)."""
    try:
        fn(*args, lam)
    except Exception as plain_error:  # noqa: BLE001 - it fails without gradients too
        _batched_failure(fn, name, args, (lam,))
        fail(f"`{name}` raised an error (inputs: {where}): {_error_text(plain_error)}")
    try:
        fn(*args, torch.tensor(lam, dtype=args[0].dtype))
    except Exception as tensor_error:  # noqa: BLE001 - student code
        fail(f"`{name}` works with lam a Python float but raises when lam is a 0-d tensor, as it is when "
             f"gradients are taken with respect to lam (inputs: {where}): {_error_text(tensor_error)}. Write code "
             "that works for both (lam * torch.eye(...) does).")
    fail(f"`{name}` works without gradients but raises when its inputs require gradients (Q, K, V and lam "
         f"with requires_grad; inputs: {where}): {_error_text(error)}. Compute the output with torch "
         "operations only (no .numpy(), .item(), in-place changes of an input, or torch.no_grad()).")


def ridge_matches_reference(ridge_attention):
    """`ridge_attention` matches the reference over batch shapes, sizes, dtypes and tensor lam."""
    gen = fresh_generator()
    for lead, n_q, n, d, d_v, lam, dtype, lam_tensor in RIDGE_CASES:
        Q, K, V = _ridge_inputs(gen, lead, n_q, n, d, d_v, dtype)
        lam_arg = torch.tensor(lam, dtype=dtype) if lam_tensor else lam
        try:
            got = ridge_attention(Q, K, V, lam_arg)
        except Exception as error:  # noqa: BLE001 - student code
            _batched_failure(ridge_attention, "ridge_attention", (Q, K, V), (lam_arg,))
            _raised("ridge_attention", error, _describe(lead, n_q, n, d, d_v, lam, dtype)
                    + (" (lam given as a 0-d tensor)" if lam_tensor else ""))
        expect_close(got, ref.ridge_attention(Q, K, V, lam), "ridge_attention", dims=" ".join(
                     [f"B{i + 1}" for i in range(len(lead))] + ["n_q", "d_v"]), input_dtype=dtype,
                     mistakes=ref.ridge_mistakes(Q, K, V, lam), where=_describe(lead, n_q, n, d, d_v, lam, dtype)
                     + (" (lam given as a 0-d tensor)" if lam_tensor else ""))


GRAD_NAMES = ("Q", "K", "V", "lam")


def ridge_gradients_reach_all_inputs(ridge_attention):
    """d(sum(out * G)) for a random G, with respect to Q, K, V and lam, against autograd through
    the float64 reference."""
    gen = fresh_generator()
    for lead, n_q, n, d, d_v, lam in [((2,), 4, 7, 3, 2, 0.6), ((), 3, 2, 4, 3, 1.4)]:
        Q, K, V = _ridge_inputs(gen, lead, n_q, n, d, d_v, F64)
        upstream = _randn(gen, *lead, n_q, d_v)
        where = _describe(lead, n_q, n, d, d_v, lam, F64)
        try:
            out, grads = grad_call(ridge_attention, Q, K, V, lam, wrt=(0, 1, 2, 3), upstream=upstream)
        except Exception as error:  # noqa: BLE001 - student code
            _gradient_failure(ridge_attention, "ridge_attention", (Q, K, V), lam, error, where)
        ref_out, ref_grads = ref.ridge_attention_with_grads(Q, K, V, lam, upstream)
        expect_close(out, ref_out, "ridge_attention", where=where + ", lam a 0-d tensor with requires_grad")
        for name, grad, expected in zip(GRAD_NAMES, grads, ref_grads):
            if grad is None:
                if name == "lam":
                    fail("no gradient reached lam: keep lam a tensor all the way (lam * torch.eye(...)); "
                         "lam.item(), float(lam) or torch.tensor(lam) cut it off from autograd.")
                fail(f"no gradient reached {name}: the output must be computed from {name} with torch "
                     "operations (no .detach(), .numpy(), .item() or torch.no_grad()).")
            grad = as_tensor(grad, f"gradient with respect to {name}")
            if name == "lam":
                grad = grad.reshape(())
            expect_close(grad, expected, f"the gradient of ridge_attention with respect to {name}", rtol=1e-7,
                         where=where)


def ridge_one_solve_for_any_n(ridge_attention):
    """One d x d solve per problem: the number of solve/factorization ops may not grow with n,
    and no n x n matrix (the push-through form, or attention weights formed before V)."""
    gen = fresh_generator()
    counts, solves = {}, {}
    for n in (16, 256):
        Q, K, V = _ridge_inputs(gen, (2,), n, n, 4, 3, F64)
        got, counts[n] = traced_call(ridge_attention, Q, K, V, 0.5)
        expect_close(got, ref.ridge_attention(Q, K, V, 0.5), "ridge_attention", dims="B n_q d_v",
                     where=f"leading dims (2,), n_q = n = {n}, d=4")
        solves[n] = counts[n].of(SOLVE_OPS)
    expect(solves[256] >= 1 or counts[256].matrix_products() >= 1,
           f"`ridge_attention` ran no matrix operations ({counts[256].summary()}).")
    expect(solves[256] <= solves[16],
           f"`ridge_attention` ran {solves[16]} solve/inverse ops at n=16 but {solves[256]} at n=256: "
           "it solves a system per query or per key. The ridge matrix K^T K + lam I is d x d and the "
           "same for every query: factor or solve with it once per problem, O(n d^2) in all.")
    linear = 2 * 256 * 4  # leading dims x n x max(d, d_v): the largest tensor the d x d form needs
    expect(counts[256].largest_output <= 4 * linear,
           f"`ridge_attention` built a tensor of {counts[256].largest_output} elements at n = 256, d = 4 (the "
           f"d x d form needs at most about {linear}): an n x n matrix, such as K K^T (the push-through form) "
           "or Q (...) K^T before multiplying by V. That costs O(n^2) memory; multiply K^T V first and keep "
           "every intermediate d x d or n x d.")


# -- Sherman-Morrison ---------------------------------------------------------------------------------

def _well_conditioned(gen, d, dtype):
    M = torch.eye(d, dtype=F64) * 2.0 + 0.4 * _randn(gen, d, d)
    return M.to(dtype)


def sherman_morrison_matches_reference(sherman_morrison):
    """`sherman_morrison` matches the exact inverse of M + u v^T on fresh well-conditioned M."""
    gen = fresh_generator()
    for d, dtype in [(3, F64), (2, F64), (5, F64), (8, F32), (12, F64), (1, F64)]:
        M = _well_conditioned(gen, d, F64)
        u, v = 0.7 * _randn(gen, d), 0.7 * _randn(gen, d)
        M_inv = torch.linalg.inv(M)
        args = (M_inv.to(dtype), u.to(dtype), v.to(dtype))
        where = f"d={d}, a non-symmetric M, {dtype_name(dtype)}"
        got = call(sherman_morrison, "sherman_morrison", *args, where=where)
        expect_close(got, ref.sherman_morrison(*args), "sherman_morrison", dims="d d", input_dtype=dtype,
                     mistakes=ref.sherman_morrison_mistakes(*args), where=where)


def sherman_morrison_is_quadratic(sherman_morrison):
    """O(d^2): matrix-vector products and an outer product, no inversion or solve, no d x d by d x d
    product (about d^3 multiply-adds, d times the budget at d = 48) and no d x d x d intermediate."""
    gen = fresh_generator()
    d = 48
    M_inv = torch.linalg.inv(_well_conditioned(gen, d, F64))
    u, v = _randn(gen, d), _randn(gen, d)
    got, counts = traced_call(sherman_morrison, M_inv, u, v)
    expect_close(got, ref.sherman_morrison(M_inv, u, v), "sherman_morrison", dims="d d", where=f"d={d}")
    solves = counts.of(SOLVE_OPS)
    expect(solves == 0,
           f"`sherman_morrison` inverted or solved with a matrix ({solves} such ops): that costs O(d^3). "
           "The point of the formula is to update M^(-1) with two matrix-vector products, one inner "
           "product and one outer product, O(d^2).")
    budget = 8 * d * d  # M^(-1) u and v^T M^(-1) are d^2 each; room for a few more vector products
    expect(counts.product_work <= budget,
           f"`sherman_morrison` did {counts.product_work} multiply-adds in matrix products at d={d}, about "
           f"{counts.product_work / d ** 3:.1f} d^3: it multiplies two d x d matrices (for instance M^(-1) "
           "(u v^T) M^(-1)), which costs O(d^3). Multiply M^(-1) by the vectors first: M^(-1) u and "
           "v^T M^(-1) are O(d^2) each, and their outer product is the correction.")
    expect(counts.largest_output <= 2 * d * d,
           f"`sherman_morrison` made an intermediate with {counts.largest_output} elements at d={d} (d^2 = "
           f"{d * d}): a d x d x d broadcast is O(d^3) work. Every intermediate should be a vector or d x d.")


# -- causal ridge attention ---------------------------------------------------------------------------

def _causal_inputs(gen, n, d, d_v, dtype=F64):
    return _randn(gen, n, d, dtype=dtype), _randn(gen, n, d, dtype=dtype), _randn(gen, n, d_v, dtype=dtype)


CAUSAL_CASES = [(9, 3, 2, 0.5, F64), (6, 8, 3, 0.7, F64), (14, 4, 4, 1e-2, F64), (1, 3, 2, 2.0, F64),
                (25, 5, 3, 1.5, F32), (20, 2, 5, 3.0, F64)]


def causal_matches_reference(causal_ridge_attention):
    """`causal_ridge_attention` matches the prefix ridge solves on fresh inputs."""
    gen = fresh_generator()
    for n, d, d_v, lam, dtype in CAUSAL_CASES:
        Q, K, V = _causal_inputs(gen, n, d, d_v, dtype)
        where = f"n={n}, d={d}, d_v={d_v}, lam={lam:g}, {dtype_name(dtype)}"
        got = call(causal_ridge_attention, "causal_ridge_attention", Q, K, V, lam, where=where)
        # the recursion accumulates rounding over n steps: a float32 result gets 5x the usual room
        expect_close(got, ref.causal_ridge_attention(Q, K, V, lam), "causal_ridge_attention", dims="n d_v",
                     input_dtype=dtype, rtol=1e-4 if dtype == F32 else None,
                     mistakes=ref.causal_mistakes(Q, K, V, lam), where=where)


def causal_ignores_the_future(causal_ridge_attention):
    """Change every pair (and query) after position s: rows 0..s must not move; changing pair s
    must move row s."""
    gen = fresh_generator()
    n, d, d_v, lam = 12, 3, 2, 0.6
    Q, K, V = _causal_inputs(gen, n, d, d_v)
    where = f"n={n}, d={d}, d_v={d_v}, lam={lam:g}, float64"
    base = as_tensor(call(causal_ridge_attention, "causal_ridge_attention", Q, K, V, lam, where=where),
                     "causal_ridge_attention")
    expect_shape(base, (n, d_v), "causal_ridge_attention", dims="n d_v")
    base = base.to(F64)
    scale = max(base.abs().max().item(), 1e-12)
    for s in (0, 4, n - 2):
        Q2, K2, V2 = Q.clone(), K.clone(), V.clone()
        Q2[s + 1:] += _randn(gen, n - s - 1, d)
        K2[s + 1:] += _randn(gen, n - s - 1, d)
        V2[s + 1:] += _randn(gen, n - s - 1, d_v)
        moved = as_tensor(call(causal_ridge_attention, "causal_ridge_attention", Q2, K2, V2, lam, where=where),
                          "causal_ridge_attention").to(F64)
        changed = ((moved[: s + 1] - base[: s + 1]).abs().amax(-1) > 1e-8 * scale).nonzero()
        if len(changed):
            row = int(changed[0])
            fail(f"`causal_ridge_attention` looks into the future: row {row} changed when only the pairs "
                 f"after position {s} changed. Row t may use pairs 0..t only (check the loop for an "
                 "off-by-one: update with pair t, then answer query t).")
    for s in (0, 5, n - 1):
        K2, V2 = K.clone(), V.clone()
        K2[s] += 1.0 + _randn(gen, d).abs()
        V2[s] += 1.0 + _randn(gen, d_v).abs()
        moved = as_tensor(call(causal_ridge_attention, "causal_ridge_attention", Q, K2, V2, lam, where=where),
                          "causal_ridge_attention").to(F64)
        expect((moved[s] - base[s]).abs().max().item() > 1e-6 * scale,
               f"`causal_ridge_attention`: row {s} did not change when pair {s} changed. Row t must "
               "include pair t itself (update with pair t before answering query t).")
    # causal and sensitive to its own pair is not enough: the points are for the right outputs
    expect_close(base, ref.causal_ridge_attention(Q, K, V, lam), "causal_ridge_attention", dims="n d_v",
                 mistakes=ref.causal_mistakes(Q, K, V, lam), where=where)
    expect_close(moved, ref.causal_ridge_attention(Q, K2, V2, lam), "causal_ridge_attention", dims="n d_v",
                 where=where + ", another draw")


def causal_is_a_linear_pass(causal_ridge_attention):
    """O(n) steps of O(d^2) work: no solve per step, and the work is a pass over the sequence."""
    gen = fresh_generator()
    short, long = 32, 160
    counts = {}
    for n in (short, long):
        Q, K, V = _causal_inputs(gen, n, 4, 3)
        got, counts[n] = traced_call(causal_ridge_attention, Q, K, V, 0.8)
        expect_close(got, ref.causal_ridge_attention(Q, K, V, 0.8), "causal_ridge_attention", dims="n d_v",
                     where=f"n={n}, d=4, d_v=3")
    extra_steps = long - short
    solves = counts[long].of(SOLVE_OPS) - counts[short].of(SOLVE_OPS)
    expect(solves <= extra_steps // 4,
           f"`causal_ridge_attention` ran {solves} more solve/inverse ops for {extra_steps} more positions: "
           "it solves a d x d system at every step, O(n d^3) in all. Carry the inverse "
           "P_t = (lam I + sum k k^T)^(-1) from step to step and update it with sherman_morrison (O(d^2)). "
           "(Re-factorizing now and then, every 8 steps or less often, is fine.)")
    growth = counts[long].compute() - counts[short].compute()
    expect(growth >= extra_steps // 2,
           f"`causal_ridge_attention` ran only {growth} more ops for {extra_steps} more positions, so it does "
           "not make a pass over the sequence: solving all n prefix systems at once (a batch of n d x d "
           "solves) costs O(n d^3). Use the Sherman-Morrison recursion, one O(d^2) update per position.")


# -- weights --------------------------------------------------------------------------------------------

WEIGHT_CASES = [((), 5, 5, 5, 0.9, F64), ((2,), 4, 7, 3, 0.5, F64), ((2, 2), 6, 3, 5, 1.2, F64),
                ((), 3, 9, 2, 1e-2, F64), ((3,), 5, 8, 4, 0.8, F32)]


def weights_match_reference(ridge_attention_weights):
    """`ridge_attention_weights` matches the reference weights over batch shapes and sizes."""
    gen = fresh_generator()
    for lead, n_q, n, d, lam, dtype in WEIGHT_CASES:
        Q, K = _randn(gen, *lead, n_q, d, dtype=dtype), _randn(gen, *lead, n, d, dtype=dtype)
        where = _describe(lead, n_q, n, d, 0, lam, dtype).replace(", d_v=0", "")
        try:
            A = ridge_attention_weights(Q, K, lam)
        except Exception as error:  # noqa: BLE001 - student code
            _batched_failure(ridge_attention_weights, "ridge_attention_weights", (Q, K), (lam,))
            _raised("ridge_attention_weights", error, where)
        expected = ref.ridge_attention_weights(Q, K, lam)
        dims = " ".join([f"B{i + 1}" for i in range(len(lead))] + ["n_q", "n"])
        expect_close(A, expected, "ridge_attention_weights", dims=dims, input_dtype=dtype,
                     mistakes=ref.weights_mistakes(Q, K, lam), where=where)
        # the weights reproduce the output for any values
        A = as_tensor(A, "ridge_attention_weights").to(F64)
        for d_v in (1, 4):
            V = _randn(gen, *lead, n, d_v)
            expect_close(A @ V, ref.ridge_attention(Q, K, V, lam), "ridge_attention_weights(Q, K, lam) @ V",
                         dims=dims.replace(" n", " d_v"), input_dtype=dtype,
                         where=where + f", values of size {d_v}")


# -- choice questions -------------------------------------------------------------------------------------

def _cost_is(answer, name, options, expected, hint):
    cost_answer_is_an_option(answer, name, options)
    expect(parse_cost(answer) == parse_cost(expected), f"`{name}` is not right. {hint}")


def noncausal_cost_is_right(noncausal_cost):
    """The `noncausal_cost` answer is O(n d^2)."""
    _cost_is(noncausal_cost, "noncausal_cost", NONCAUSAL_COST_OPTIONS, "O(n d^2)",
             "Count each piece: forming K^T K and K^T V, one d x d inversion, and applying the result to "
             "every query; then use d < n to keep the dominant terms.")


def sherman_morrison_cost_is_right(sherman_morrison_cost):
    """The `sherman_morrison_cost` answer is O(d^2)."""
    _cost_is(sherman_morrison_cost, "sherman_morrison_cost", SHERMAN_MORRISON_COST_OPTIONS, "O(d^2)",
             "With M^(-1) in hand, list the operations in the formula (matrix-vector products, an inner "
             "product, an outer product, a scaled subtraction) and their costs.")


def causal_cost_is_right(causal_cost):
    """The `causal_cost` answer is O(n d^2)."""
    _cost_is(causal_cost, "causal_cost", CAUSAL_COST_OPTIONS, "O(n d^2)",
             "Total over all n positions, with the state carried from one position to the next.")


def gradient_inputs_are_right(gradient_inputs):
    """The `gradient_inputs` answer names the inputs gradients reach, for both layers."""
    answer = parse_gradient_answer(gradient_inputs)
    expected = {"ridge": sorted(["queries", "keys", "values", "scalar"]), "nearest_neighbor": ["values"]}
    wrong = [layer for layer in expected if answer[layer] != expected[layer]]
    expect(not wrong, f"`gradient_inputs` is not right for: {', '.join(wrong)}. For each input, ask "
                      "whether the output changes smoothly when that input changes a little.")


# -- chunked causal ridge attention ---------------------------------------------------------------------

CHUNK_CASES = [(13, 3, 2, 0.5, 4, F64), (16, 4, 3, 0.9, 16, F64), (9, 5, 2, 0.3, 20, F64), (7, 2, 3, 1.3, 1, F64),
               (24, 6, 4, 2.0, 5, F64), (30, 4, 3, 1.5, 8, F32)]


def _matches_reference(fn, name, cases, knob):
    """`fn(Q, K, V, lam, extra)` against the reference causal outputs for each (n, d, d_v, lam, extra,
    dtype) case, float32 with a float32 tolerance."""
    gen = fresh_generator()
    for n, d, d_v, lam, extra, dtype in cases:
        Q, K, V = _causal_inputs(gen, n, d, d_v, dtype)
        where = f"n={n}, d={d}, d_v={d_v}, lam={lam:g}, {knob}={extra}, {dtype_name(dtype)}"
        got = call(fn, name, Q, K, V, lam, extra, where=where)
        expect_close(got, ref.causal_ridge_attention(Q, K, V, lam), name, dims="n d_v", input_dtype=dtype,
                     rtol=1e-4 if dtype == F32 else None, mistakes=ref.causal_mistakes(Q, K, V, lam), where=where)


def chunked_matches_reference(chunked_causal_ridge_attention):
    """`chunked_causal_ridge_attention` matches the prefix ridge solves on fresh inputs."""
    _matches_reference(chunked_causal_ridge_attention, "chunked_causal_ridge_attention", CHUNK_CASES, "chunk_size")


def chunked_works_block_by_block(chunked_causal_ridge_attention):
    """n / chunk_size sequential steps, each a few block operations, whatever their number: the op
    count follows the number of chunks, not n. Counted at (n, chunk_size) = (64, 16), (256, 16)
    and (256, 64): the first and last have the same number of chunks and four times the positions,
    so what they differ by is work per position, without assuming any cost per chunk."""
    gen = fresh_generator()
    counts = {}
    for n, chunk in ((64, 16), (256, 16), (256, 64)):
        Q, K, V = _causal_inputs(gen, n, 4, 3)
        got, counts[n, chunk] = traced_call(chunked_causal_ridge_attention, Q, K, V, 0.8, chunk)
        expect_close(got, ref.causal_ridge_attention(Q, K, V, 0.8), "chunked_causal_ridge_attention",
                     dims="n d_v", where=f"n={n}, d=4, d_v=3, chunk_size={chunk}")
    few, many = counts[64, 16], counts[256, 16]
    extra_chunks = (256 - 64) // 16
    solves = many.of(SOLVE_OPS) - few.of(SOLVE_OPS)
    expect(solves <= 8 * extra_chunks + 4,
           f"`chunked_causal_ridge_attention` ran {solves} more solve/factorization ops for {extra_chunks} more "
           "chunks: it solves per position. One factorization of the chunk's c x c matrix "
           "I + K_c P K_c^T serves every row of the chunk (its leading blocks belong to the prefixes).")
    extra_positions = 256 - 64
    per_position = counts[256, 64].compute() - few.compute()
    expect(per_position <= extra_positions // 4,
           f"`chunked_causal_ridge_attention` ran {per_position} more ops at n=256 with chunk_size=64 than at "
           f"n=64 with chunk_size=16: the same 4 chunks, {extra_positions} more positions. It still works "
           "position by position; each chunk should be a fixed number of block operations, whatever its size.")


# -- re-factorized recursion ------------------------------------------------------------------------------

REFACTOR_CASES = [(23, 4, 3, 0.7, 5, F64), (9, 3, 2, 1.5, 20, F64), (12, 6, 2, 0.4, 1, F64), (8, 5, 1, 2.0, 8, F64),
                  (40, 4, 3, 1.0, 8, F32)]


def refactored_matches_reference(refactored_causal_ridge_attention):
    """`refactored_causal_ridge_attention` matches the prefix ridge solves on fresh inputs."""
    _matches_reference(refactored_causal_ridge_attention, "refactored_causal_ridge_attention", REFACTOR_CASES,
                       "refactor_every")


def refactored_stays_accurate_in_float32(refactored_causal_ridge_attention):
    """Tiny lam in float32: the plain recursion is off by about 1e-2 long after t = d; re-factorizing
    from accurate sums brings it back to float32 accuracy after the first refresh."""
    gen = fresh_generator()
    n, d, d_v, lam, every = 160, 8, 3, 1e-5, 16
    for _ in range(2):
        Q, K, V = _causal_inputs(gen, n, d, d_v)
        expected = ref.causal_ridge_attention(Q, K, V, lam)
        got = call(refactored_causal_ridge_attention, "refactored_causal_ridge_attention",
                   Q.float(), K.float(), V.float(), lam, every,
                   where=f"n={n}, d={d}, d_v={d_v}, a tiny lam, refactor_every={every}, float32")
        got = as_tensor(got, "refactored_causal_ridge_attention")
        expect_shape(got, (n, d_v), "refactored_causal_ridge_attention", dims="n d_v")
        late = slice(2 * every, n)
        error = ((got.to(F64)[late] - expected[late]).abs().max() / expected[late].abs().max()).item()
        expect(error == error and error <= 1e-4,
               f"`refactored_causal_ridge_attention` on float32 inputs with a tiny lam is off by {error:.1e} "
               f"(relative) at positions t >= {2 * every} with refactor_every={every}; a recursion that is "
               "re-factorized from float64 sums is accurate to about 1e-6 there. Replace P by the inverse of "
               "the float64 sum lam I + sum k k^T after every refactor_every positions.")


def refactored_every_R_steps(refactored_causal_ridge_attention):
    """About one inversion per R positions: counted at two lengths."""
    gen = fresh_generator()
    short, long, every = 48, 176, 16
    counts = {}
    for n in (short, long):
        Q, K, V = _causal_inputs(gen, n, 4, 3)
        got, counts[n] = traced_call(refactored_causal_ridge_attention, Q, K, V, 0.8, every)
        expect_close(got, ref.causal_ridge_attention(Q, K, V, 0.8), "refactored_causal_ridge_attention",
                     dims="n d_v", where=f"n={n}, d=4, d_v=3, refactor_every={every}")
    refreshes = (long - short) // every
    solves = counts[long].of(SOLVE_OPS) - counts[short].of(SOLVE_OPS)
    expect(solves >= refreshes - 1,
           f"`refactored_causal_ridge_attention` ran {solves} more inverse/solve ops for {long - short} more "
           f"positions with refactor_every={every}: it never re-factorizes. Every {every} positions, replace "
           "P by the inverse of the float64 sum.")
    expect(solves <= 4 * refreshes + 2,
           f"`refactored_causal_ridge_attention` ran {solves} more inverse/solve ops for {long - short} more "
           f"positions with refactor_every={every}: it re-factorizes at every step (O(n d^3)). Invert once "
           "per refactor_every positions and use sherman_morrison in between.")
