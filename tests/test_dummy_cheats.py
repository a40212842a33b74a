"""A function that returns the right shape but meaningless values earns nothing.

For every assignment, each dummy notebook is the blank student notebook with every graded
computational function replaced by a dummy (zeros, constants, identities, inputs passed through,
cumulative sums of inputs, ...) that returns an output of the right shape and type, and the
written / multiple-choice answers left as stubs. Such a notebook must score exactly what the
blank notebook scores: a property or diagnostic check (causality, batching, K_0 = D, op counts,
timings) may only give points once the function's values are right.

All dummies of an assignment are graded through the real grader in the assignment's shared
batch (tests/batches.py), with the blank notebook and the soundness tests' notebooks. (That the
reference gets full marks is covered by tests/test_soundness.py.)
"""
import nbformat
import pytest

from tests import batches, notebooks
from tests.conftest import selected_assignments


def _dummies(**sources):
    return {name: "import torch\n" + source.strip() for name, source in sources.items()}


SSM_CPU_DUMMIES = {
    "zeros": _dummies(
        ssm_kernel="def ssm_kernel(A, B, C, D, L):\n    return torch.zeros(L + 1, dtype=torch.float64)",
        unrolled_ssm_forward="def unrolled_ssm_forward(W, U, b, x):\n"
                             "    return x.new_zeros(x.shape[0], x.shape[1], W.shape[0])",
        make_conv_kernel="def make_conv_kernel(W, T):\n    return W.new_zeros(W.shape[0], W.shape[0], T)",
        conv_ssm_forward="def conv_ssm_forward(W, U, b, x):\n"
                         "    return x.new_zeros(x.shape[0], x.shape[1], W.shape[0])",
        low_rank_ssm_kernel="def low_rank_ssm_kernel(p, B, C, D, L):\n    return torch.zeros(L + 1, dtype=p.dtype)",
    ),
    # K_0 = D and nothing else right; the identity at every kernel index; ones everywhere
    "constants": _dummies(
        ssm_kernel="ssm_kernel = lambda A, B, C, D, L: torch.full((L + 1,), float(D))",
        unrolled_ssm_forward="def unrolled_ssm_forward(W, U, b, x):\n"
                             "    return x.new_ones(x.shape[0], x.shape[1], W.shape[0])",
        make_conv_kernel="def make_conv_kernel(W, T):\n"
                         "    return torch.eye(W.shape[0], dtype=W.dtype).unsqueeze(-1).repeat(1, 1, T)",
        conv_ssm_forward="def conv_ssm_forward(W, U, b, x):\n"
                         "    return x.new_ones(x.shape[0], x.shape[1], W.shape[0])",
        low_rank_ssm_kernel="low_rank_ssm_kernel = lambda p, B, C, D, L: torch.full((L + 1,), float(D))",
    ),
    # a Python list [D, 0, ...]; the recurrence with W = I (a running sum of the drive);
    # [I, W, W, ...]; the drive U x_t + b alone (h_1 right, nothing after)
    "passthrough": _dummies(
        ssm_kernel="def ssm_kernel(A, B, C, D, L):\n    return [float(D)] + [0.0] * L",
        unrolled_ssm_forward="def unrolled_ssm_forward(W, U, b, x):\n    return (x @ U.T + b).cumsum(1)",
        make_conv_kernel="def make_conv_kernel(W, T):\n"
                         "    eye = torch.eye(W.shape[0], dtype=W.dtype)\n"
                         "    return torch.stack([eye] + [W] * (T - 1), dim=-1)",
        conv_ssm_forward="def conv_ssm_forward(W, U, b, x):\n    return x @ U.T + b",
        # A = I: right only when p = 0
        low_rank_ssm_kernel="def low_rank_ssm_kernel(p, B, C, D, L):\n    return [float(D)] + [float(C @ B)] * L",
    ),
}

SSM_GPU_DUMMIES = {
    "zeros": _dummies(
        unrolled_ssm_forward=SSM_CPU_DUMMIES["zeros"]["unrolled_ssm_forward"],
        make_conv_kernel=SSM_CPU_DUMMIES["zeros"]["make_conv_kernel"],
        conv_ssm_forward=SSM_CPU_DUMMIES["zeros"]["conv_ssm_forward"],
        cuda_time="def cuda_time(fn, *args, warmup=3, repeats=10):\n    return 0.0",
        make_diag_conv_kernel="def make_diag_conv_kernel(w, T):\n    return w.new_zeros(w.shape[0], 1, T)",
        diag_conv_ssm_forward="def diag_conv_ssm_forward(w, U, b, x):\n"
                              "    return x.new_zeros(x.shape[0], x.shape[1], w.shape[0])",
        fft_ssm_forward="def fft_ssm_forward(w, U, b, x):\n"
                        "    return x.new_zeros(x.shape[0], x.shape[1], w.shape[0])",
        scan_ssm_forward="def scan_ssm_forward(a, u):\n    return torch.zeros_like(u)",
    ),
    # fast constant outputs (they would win any timing comparison); a timer that makes the
    # right number of calls but reports a constant
    "constants": _dummies(
        unrolled_ssm_forward=SSM_CPU_DUMMIES["constants"]["unrolled_ssm_forward"],
        make_conv_kernel=SSM_CPU_DUMMIES["constants"]["make_conv_kernel"],
        conv_ssm_forward=SSM_CPU_DUMMIES["constants"]["conv_ssm_forward"],
        cuda_time="def cuda_time(fn, *args, warmup=3, repeats=10):\n"
                  "    for _ in range(warmup + repeats):\n"
                  "        fn(*args)\n"
                  "    return 10.0",
        make_diag_conv_kernel="def make_diag_conv_kernel(w, T):\n    return w.new_ones(w.shape[0], 1, T)",
        diag_conv_ssm_forward="def diag_conv_ssm_forward(w, U, b, x):\n"
                              "    return x.new_ones(x.shape[0], x.shape[1], w.shape[0])",
        fft_ssm_forward="def fft_ssm_forward(w, U, b, x):\n"
                        "    return x.new_ones(x.shape[0], x.shape[1], w.shape[0])",
        scan_ssm_forward="def scan_ssm_forward(a, u):\n    return torch.ones_like(u)",
    ),
    # inputs passed through, running sums; a timer that times one call only
    "passthrough": _dummies(
        unrolled_ssm_forward=SSM_CPU_DUMMIES["passthrough"]["unrolled_ssm_forward"],
        make_conv_kernel=SSM_CPU_DUMMIES["passthrough"]["make_conv_kernel"],
        conv_ssm_forward=SSM_CPU_DUMMIES["passthrough"]["conv_ssm_forward"],
        cuda_time="def cuda_time(fn, *args, warmup=3, repeats=10):\n"
                  "    import time\n"
                  "    start = time.perf_counter()\n"
                  "    fn(*args)\n"
                  "    return (time.perf_counter() - start) * 1e3",
        make_diag_conv_kernel="def make_diag_conv_kernel(w, T):\n"
                              "    return torch.stack([torch.ones_like(w)] + [w] * (T - 1), dim=-1).unsqueeze(1)",
        diag_conv_ssm_forward="def diag_conv_ssm_forward(w, U, b, x):\n    return (x @ U.T + b).cumsum(1)",
        fft_ssm_forward="def fft_ssm_forward(w, U, b, x):\n    return x @ U.T + b",
        scan_ssm_forward="def scan_ssm_forward(a, u):\n    return u.cumsum(1)",
    ),
}

PURIFICATION_DUMMIES = {
    "zeros": _dummies(
        reconstruction_loss="def reconstruction_loss(W, X):\n    return 0.0",
        regularization_loss="def regularization_loss(W):\n    return 0.0",
        crossover_lambda="def crossover_lambda(W_a, W_b, X):\n    return 0.0",
        optimal_purifier="def optimal_purifier(X, lam):\n    return X.new_zeros(X.shape[0], X.shape[0])",
        train_purifier="def train_purifier(X, lam, steps, lr):\n    return X.new_zeros(X.shape[0], X.shape[0])",
        feasible_lambda_range="def feasible_lambda_range(sigmas, k, keep, attenuate):\n    return (0.0, 0.0)",
    ),
    "identity": _dummies(
        reconstruction_loss="def reconstruction_loss(W, X):\n    return torch.tensor(1.0)",
        regularization_loss="def regularization_loss(W):\n    return torch.tensor(1.0)",
        crossover_lambda="def crossover_lambda(W_a, W_b, X):\n    return 1.0",
        optimal_purifier="def optimal_purifier(X, lam):\n    return torch.eye(X.shape[0], dtype=X.dtype)",
        train_purifier="def train_purifier(X, lam, steps, lr):\n    return torch.eye(X.shape[0], dtype=X.dtype)",
        feasible_lambda_range="def feasible_lambda_range(sigmas, k, keep, attenuate):\n    return (0.0, 1.0)",
    ),
    # functions of the inputs that ignore the rest; a range as a numpy array; no range at all
    "passthrough": _dummies(
        reconstruction_loss="def reconstruction_loss(W, X):\n    return float((X ** 2).sum())",
        regularization_loss="def regularization_loss(W):\n    return float(W.abs().sum())",
        crossover_lambda="def crossover_lambda(W_a, W_b, X):\n    return float((W_a - W_b).abs().sum())",
        optimal_purifier="def optimal_purifier(X, lam):\n    return X @ X.T",
        train_purifier="def train_purifier(X, lam, steps, lr):\n    return X @ X.T / (X @ X.T + lam).norm()",
        feasible_lambda_range="def feasible_lambda_range(sigmas, k, keep, attenuate):\n    return None",
    ),
    "numpy_range": _dummies(
        reconstruction_loss="def reconstruction_loss(W, X):\n    return float(X.abs().sum())",
        regularization_loss="def regularization_loss(W):\n    return float(W.numel())",
        crossover_lambda="def crossover_lambda(W_a, W_b, X):\n    return float('inf')",
        optimal_purifier="def optimal_purifier(X, lam):\n    return torch.eye(X.shape[0], dtype=X.dtype) / (1 + lam)",
        train_purifier="def train_purifier(X, lam, steps, lr):\n    return torch.eye(X.shape[0], dtype=X.dtype) * lr",
        feasible_lambda_range="def feasible_lambda_range(sigmas, k, keep, attenuate):\n"
                              "    import numpy as np\n"
                              "    return np.array([0.0, float('inf')])",
    ),
}

_OUT_SHAPE = "(*Q.shape[:-1], V.shape[-1])"
RIDGE_DUMMIES = {
    "zeros": _dummies(
        update_mean="def update_mean(m, x_new, n):\n    return x_new * 0",
        ridge_sums="def ridge_sums(X, Y, lam):\n"
                   "    return X.new_zeros(X.shape[1], X.shape[1]), X.new_zeros(X.shape[1], *Y.shape[1:])",
        ridge_attention=f"def ridge_attention(Q, K, V, lam):\n    return Q.new_zeros{_OUT_SHAPE}",
        sherman_morrison="def sherman_morrison(M_inv, u, v):\n    return torch.zeros_like(M_inv)",
        causal_ridge_attention="def causal_ridge_attention(Q, K, V, lam):\n    return torch.zeros_like(V)",
        ridge_attention_weights="def ridge_attention_weights(Q, K, lam):\n    return Q @ K.mT * 0",
        refactored_causal_ridge_attention="def refactored_causal_ridge_attention(Q, K, V, lam, refactor_every):\n"
                                          "    return torch.zeros_like(V)",
        chunked_causal_ridge_attention="def chunked_causal_ridge_attention(Q, K, V, lam, chunk_size):\n"
                                       "    return torch.zeros_like(V)",
    ),
    # consistent, causal, smooth in every input, and wrong: linear attention and running sums
    "linear": _dummies(
        update_mean="def update_mean(m, x_new, n):\n    return x_new",
        ridge_sums="def ridge_sums(X, Y, lam):\n    return X.T @ X, X.T @ Y",
        ridge_attention="def ridge_attention(Q, K, V, lam):\n    return Q @ (K.mT @ V) * lam",
        sherman_morrison="def sherman_morrison(M_inv, u, v):\n    return M_inv",
        causal_ridge_attention="causal_ridge_attention = lambda Q, K, V, lam: V.cumsum(0)",
        ridge_attention_weights="def ridge_attention_weights(Q, K, lam):\n    return Q @ K.mT",
        refactored_causal_ridge_attention="def refactored_causal_ridge_attention(Q, K, V, lam, refactor_every):\n"
                                          "    return V.cumsum(0)",
        chunked_causal_ridge_attention="def chunked_causal_ridge_attention(Q, K, V, lam, chunk_size):\n"
                                       "    return V.cumsum(0)",
    ),
    # running means, identities, a value per query that depends on its own pair only
    "means": _dummies(
        update_mean="def update_mean(m, x_new, n):\n    return m + x_new",
        ridge_sums="def ridge_sums(X, Y, lam):\n"
                   "    return lam * torch.eye(X.shape[1], dtype=X.dtype), X.sum(0) if Y.dim() == 1 else X.T @ Y * 0",
        ridge_attention="def ridge_attention(Q, K, V, lam):\n"
                        "    return (Q @ K.mT).softmax(-1) @ V",
        sherman_morrison="def sherman_morrison(M_inv, u, v):\n    return M_inv - torch.outer(u, v)",
        causal_ridge_attention="def causal_ridge_attention(Q, K, V, lam):\n"
                               "    steps = torch.arange(1, V.shape[0] + 1, dtype=V.dtype).unsqueeze(-1)\n"
                               "    return V.cumsum(0) / steps + (Q * K).sum(-1, keepdim=True)",
        ridge_attention_weights="def ridge_attention_weights(Q, K, lam):\n"
                                "    return (Q @ K.mT).softmax(-1)",
        refactored_causal_ridge_attention="def refactored_causal_ridge_attention(Q, K, V, lam, refactor_every):\n"
                                          "    return V * lam",
        chunked_causal_ridge_attention="def chunked_causal_ridge_attention(Q, K, V, lam, chunk_size):\n"
                                       "    return V.cumsum(0) / chunk_size",
    ),
}

DUMMIES = {
    "ssm_forward_cpu": SSM_CPU_DUMMIES,
    "ssm_forward_gpu": SSM_GPU_DUMMIES,
    "purification": PURIFICATION_DUMMIES,
    "ridge_attention": RIDGE_DUMMIES,
}

# An assignment missing here fails tests/unit/test_assignment_pieces.py, naming this table.
SPECS = [spec for spec in selected_assignments() if spec.id in DUMMIES]
CASES = [(spec.id, label) for spec in SPECS for label in DUMMIES[spec.id]]


def dummy_notebook(spec, replace):
    return notebooks.with_replacements(spec.id, replace, base=nbformat.read(spec.student, as_version=4))


# Graded with the other tests' notebooks of the same assignment (tests/batches.py).
for _spec in SPECS:
    batches.want(_spec.id, "blank", lambda spec=_spec: spec.student)
    for _label, _replace in DUMMIES[_spec.id].items():
        batches.want(_spec.id, f"dummy_{_label}", lambda spec=_spec, replace=_replace: dummy_notebook(spec, replace))


@pytest.fixture(scope="module")
def dummy_results(graded_batches):
    """{assignment: {label: result}}, with the blank student notebook as label 'blank'."""
    return {spec.id: {"blank": graded_batches[spec.id]["blank"],
                      **{label: graded_batches[spec.id][f"dummy_{label}"] for label in DUMMIES[spec.id]}}
            for spec in SPECS}


def passed_cases(result):
    lines = [f"{result['file']}: {result['total']}/{result['possible']} ({result['status']})"]
    for q, data in sorted(result["questions"].items()):
        for case in data["cases"]:
            if case["passed"]:
                lines.append(f"  passed {q}/{case['name']}")
    return "\n".join(lines)


@pytest.mark.parametrize("assignment,label", CASES)
def test_dummy_scores_what_blank_scores(dummy_results, assignment, label):
    blank, result = dummy_results[assignment]["blank"], dummy_results[assignment][label]
    assert blank["total"] == 0, passed_cases(blank)
    assert result["status"].startswith("Completed"), passed_cases(result)
    assert result["total"] == blank["total"], passed_cases(result)


def test_every_graded_function_has_dummies():
    """Every computational function the student notebook defines is replaced in every dummy."""
    for spec in SPECS:
        nb = nbformat.read(spec.student, as_version=4)
        defined = set()
        for cell in nb.cells:
            if cell.cell_type == "code" and "..." in cell.source:
                defined |= notebooks.defined_names(cell.source)
        defined.discard("_course_library")
        for label, replace in DUMMIES[spec.id].items():
            assert set(replace) == defined, f"{spec.id}/{label}: {sorted(defined ^ set(replace))}"
