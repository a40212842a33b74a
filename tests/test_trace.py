"""Op counting, the evidence behind every structure check: what it sees and what survives the pipe."""
import torch

from autograder import wire
from autograder.checks.trace import OpCounts, count_ops_locally


def primal(Q, K, V, lam):
    Kt = K.transpose(-1, -2)
    return Q @ torch.linalg.solve(Kt @ K + lam * torch.eye(K.shape[-1], dtype=K.dtype), Kt @ V)


def dual(Q, K, V, lam):
    Kt = K.transpose(-1, -2)
    return Q @ Kt @ torch.linalg.solve(K @ Kt + lam * torch.eye(K.shape[-2], dtype=K.dtype), V)


def inputs(n, d=4):
    gen = torch.Generator().manual_seed(n)
    return [torch.randn(n, d, generator=gen, dtype=torch.float64) for _ in range(3)]


def test_largest_output_separates_d_by_d_from_n_by_n():
    Q, K, V = inputs(256)
    small, counts_small = count_ops_locally(primal, Q, K, V, 0.5)
    big, counts_big = count_ops_locally(dual, Q, K, V, 0.5)
    assert torch.allclose(small, big)  # the same numbers: only the size of the work differs
    assert counts_small.largest_output == 256 * 4
    assert counts_big.largest_output == 256 * 256


def test_views_and_fills_do_not_count_as_large():
    def expand_only(x):
        return x.expand(512, 512).sum()

    _, counts = count_ops_locally(expand_only, torch.ones(1, 512))
    assert counts.counts["expand"] == 1
    assert counts.largest_output == 1  # only the sum did arithmetic


def gram_helper(x):
    return x @ x.T


def uses_helper(x):
    return gram_helper(x).sum()


def test_excluded_helpers_are_not_counted():
    """Helpers are looked up by name in the checked function's globals, as in a notebook."""
    _, counted = count_ops_locally(uses_helper, torch.ones(64, 2))
    _, excluded = count_ops_locally(uses_helper, torch.ones(64, 2), exclude_calls_to=["gram_helper"])
    assert counted.matrix_products() == 1 and counted.largest_output == 64 * 64
    assert excluded.matrix_products() == 0 and excluded.largest_output == 1


def test_counts_cross_the_wire_and_reject_garbage():
    _, counts = count_ops_locally(dual, *inputs(32), 0.5)
    back = OpCounts.from_dict(wire.decode(wire.encode(counts.to_dict())))
    assert back.counts == counts.counts and back.largest_output == counts.largest_output == 32 * 32
    forged = OpCounts.from_dict({"ops": {"mm": -3, "bmm": "many", 7: 1, "add": 2}, "largest_output": -1})
    assert forged.counts == {"add": 2} and forged.largest_output == 0
    assert OpCounts.from_dict(None).total() == 0 and OpCounts.from_dict(["mm"]).total() == 0


def test_product_work_is_the_multiply_adds_of_each_product():
    gen = torch.Generator().manual_seed(3)
    M, N, u, v = (torch.randn(*shape, generator=gen, dtype=torch.float64) for shape in ((5, 7), (7, 3), (7,), (5,)))

    def products(M, N, u, v):
        return (M @ N).sum() + (M @ u).sum() + u.dot(u) + torch.addmm(torch.zeros(5, 3, dtype=M.dtype), M, N).sum()

    _, counts = count_ops_locally(products, M, N, u, v)
    assert counts.product_work == 5 * 3 * 7 + 5 * 7 + 7 + 5 * 3 * 7
    _, batched = count_ops_locally(torch.bmm, torch.ones(4, 2, 6), torch.ones(4, 6, 3))
    assert batched.product_work == 4 * 2 * 3 * 6
    back = OpCounts.from_dict(wire.decode(wire.encode(counts.to_dict())))
    assert back.product_work == counts.product_work
    assert OpCounts.from_dict({"product_work": -5}).product_work == 0


def test_product_work_separates_vector_from_matrix_products():
    d = 32
    M_inv, u, v = torch.eye(d, dtype=torch.float64), *torch.ones(2, d, dtype=torch.float64)

    def quadratic(M_inv, u, v):
        left, right = M_inv @ u, v @ M_inv
        return M_inv - torch.outer(left, right) / (1 + v @ left)

    def cubic(M_inv, u, v):
        return M_inv - M_inv @ torch.outer(u, v) @ M_inv / (1 + v @ M_inv @ u)

    fast, counts_fast = count_ops_locally(quadratic, M_inv, u, v)
    slow, counts_slow = count_ops_locally(cubic, M_inv, u, v)
    assert torch.allclose(fast, slow)
    assert counts_fast.product_work == 2 * d * d + d
    assert counts_slow.product_work == 2 * d ** 3 + d * d + d


def slow_powers(w, T):
    """A kernel built with a loop: T - 1 multiplications, which an excluded helper may run."""
    powers = [torch.ones_like(w)]
    for _ in range(T - 1):
        powers.append(powers[-1] * w)
    return torch.stack(powers, dim=-1)


def forward_with_helper(w, T):
    return slow_powers(w, T).sum(-1)


class CallableForward:
    def __call__(self, w, T):
        return slow_powers(w, T).sum(-1)


def test_excluded_helpers_stay_excluded_through_wrappers():
    """However the student wraps the graded function (torch.no_grad, functools.partial, a callable
    object), the helper's ops are left out, and the helper is restored afterwards."""
    import functools
    w = torch.rand(3, dtype=torch.float64)
    _, plain = count_ops_locally(forward_with_helper, w, 50)
    _, counted = count_ops_locally(forward_with_helper, w, 50, exclude_calls_to=["slow_powers"])
    assert plain.compute() >= 49 > counted.compute() >= 1
    for wrapped in (torch.no_grad()(forward_with_helper), functools.partial(forward_with_helper, T=50),
                    CallableForward()):
        args = (w,) if isinstance(wrapped, functools.partial) else (w, 50)
        _, counts = count_ops_locally(wrapped, *args, exclude_calls_to=["slow_powers"])
        assert counts.compute() == counted.compute(), type(wrapped)
    assert globals()["slow_powers"].__name__ == "slow_powers"

