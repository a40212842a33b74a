"""Known mistakes and correct alternatives for purification."""
from tests.notebooks import Mutant, Variant

REFERENCE_RANGE = '''
def feasible_lambda_range(sigmas, k, keep, attenuate):
    s = torch.sort(torch.as_tensor(sigmas, dtype=torch.float64).flatten(), descending=True).values
    hi = math.inf if k == 0 else float(s[k - 1] ** 2 * (1 - keep) / keep)
    lo = 0.0 if k >= len(s) else float(s[k] ** 2 * (1 - attenuate) / attenuate)
    if lo > hi:
        return None
    return (lo, hi)
'''

REFERENCE_PURIFIER = '''
def optimal_purifier(X, lam):
    U, s, _ = torch.linalg.svd(X, full_matrices=False)
    shrink = s ** 2 / (s ** 2 + lam)
    return (U * shrink) @ U.T
'''

REFERENCE_TRAINING = '''
def train_purifier(X, lam, steps, lr):
    m = X.shape[0]
    W = torch.zeros(m, m, dtype=X.dtype, requires_grad=True)
    optimizer = torch.optim.SGD([W], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((X - W @ X) ** 2).sum() + lam * (W ** 2).sum()
        loss.backward()
        optimizer.step()
    return W.detach()
'''

MUTANTS = [
    # -- the losses --------------------------------------------------------------------------
    Mutant("reconstruction_norm_not_squared", "||X - W X||_F instead of its square", {"reconstruction_loss": '''
def reconstruction_loss(W, X):
    return float(torch.linalg.norm(X - W @ X))
'''}, loses=["q1", "q2"], keeps=["q3", "q5", "q6"], says="not squared"),
    Mutant("reconstruction_mean", "mean of the squared residuals instead of their sum", {"reconstruction_loss": '''
def reconstruction_loss(W, X):
    return float(((X - W @ X) ** 2).mean())
'''}, loses=["q1", "q2"], says="mean", keeps=["q3", "q5", "q6"]),
    Mutant("reconstruction_W_transposed", "reconstructs with W^T X (invisible on the symmetric homework W)",
           {"reconstruction_loss": '''
def reconstruction_loss(W, X):
    return float(((X - W.T @ X) ** 2).sum())
'''}, loses=["q1", "q2"], keeps=["q3", "q5", "q6"], says="transposed"),
    Mutant("regularization_not_squared", "||W||_F instead of its square", {"regularization_loss": '''
def regularization_loss(W):
    return float(torch.linalg.norm(W))
'''}, loses=["q1", "q2"], says="not squared", keeps=["q3", "q5", "q6"]),
    # -- the crossover -----------------------------------------------------------------------
    Mutant("crossover_inverted", "regularization gap over reconstruction gap", {"crossover_lambda": '''
def crossover_lambda(W_a, W_b, X):
    extra_reconstruction = reconstruction_loss(W_b, X) - reconstruction_loss(W_a, X)
    extra_regularization = regularization_loss(W_a) - regularization_loss(W_b)
    return extra_regularization / extra_reconstruction
'''}, loses=["q2"], keeps=["q1", "q3", "q5", "q6"], says="inverted"),
    # -- the closed form ---------------------------------------------------------------------
    Mutant("purifier_V_instead_of_U", "built from the right singular vectors", {"optimal_purifier": '''
def optimal_purifier(X, lam):
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)
    V = Vh.T
    return (V * (s ** 2 / (s ** 2 + lam))) @ V.T
'''}, loses=["q3"], keeps=["q1", "q2", "q5", "q6"], says="V instead of U"),
    Mutant("purifier_s_not_squared", "shrinkage s / (s + lam)", {"optimal_purifier": '''
def optimal_purifier(X, lam):
    U, s, _ = torch.linalg.svd(X, full_matrices=False)
    return (U * (s / (s + lam))) @ U.T
'''}, loses=["q3"], says="s instead of s^2", keeps=["q1", "q2", "q5", "q6"]),
    Mutant("purifier_factors_swapped", "U^T diag U instead of U diag U^T", {"optimal_purifier": '''
def optimal_purifier(X, lam):
    U, s, _ = torch.linalg.svd(X)
    shrink = torch.zeros(X.shape[0], dtype=X.dtype)
    shrink[: len(s)] = s ** 2 / (s ** 2 + lam)
    return U.T @ torch.diag(shrink) @ U
'''}, loses=["q3"], says="wrong order", keeps=["q1", "q2", "q5", "q6"]),
    Mutant("purifier_complement", "keeps lam / (s^2 + lam), what should be removed", {"optimal_purifier": '''
def optimal_purifier(X, lam):
    U, s, _ = torch.linalg.svd(X, full_matrices=False)
    return (U * (lam / (s ** 2 + lam))) @ U.T
'''}, loses=["q3"], says="complement", keeps=["q1", "q2", "q5", "q6"]),
    Mutant("purifier_full_U_without_padding", "full U with only min(m, n) weights: fails when m > n",
           {"optimal_purifier": '''
def optimal_purifier(X, lam):
    U, s, _ = torch.linalg.svd(X)
    return U @ torch.diag(s ** 2 / (s ** 2 + lam)) @ U.T
'''}, loses=["q3"], keeps=["q1", "q2", "q5", "q6"], says="shapes cannot be multiplied"),
    # -- training ----------------------------------------------------------------------------
    Mutant("training_weight_decay_lam", "weight_decay = lam: the minimizer for lam / 2", {"train_purifier": '''
def train_purifier(X, lam, steps, lr):
    W = torch.zeros(X.shape[0], X.shape[0], dtype=X.dtype, requires_grad=True)
    optimizer = torch.optim.SGD([W], lr=lr, weight_decay=lam)
    for _ in range(steps):
        optimizer.zero_grad()
        ((X - W @ X) ** 2).sum().backward()
        optimizer.step()
    return W.detach()
'''}, loses=["q5"], keeps=["q1", "q2", "q3", "q6"], says="weight_decay = 2 lam"),
    Mutant("training_mean_loss", "averaged reconstruction loss: slow and a different minimizer", {"train_purifier":
        REFERENCE_TRAINING.replace("((X - W @ X) ** 2).sum()", "((X - W @ X) ** 2).mean()")}, loses=["q5"],
           keeps=["q1", "q2", "q3", "q6"], says="did not reach the minimizer"),
    Mutant("training_gradients_accumulate", "never zeroes the gradient", {"train_purifier":
        REFERENCE_TRAINING.replace("        optimizer.zero_grad()\n", "")}, loses=["q5"],
           keeps=["q1", "q2", "q3", "q6"], says="zero the gradient each step"),
    Mutant("training_fixed_steps", "ignores `steps` and stops after 20", {"train_purifier":
        REFERENCE_TRAINING.replace("range(steps)", "range(20)")}, loses=["q5"],
           keeps=["q1", "q2", "q3", "q6"], says="Take exactly `steps` steps"),
    Mutant("training_without_penalty", "forgets lam ||W||^2: learns the identity", {"train_purifier":
        REFERENCE_TRAINING.replace(" + lam * (W ** 2).sum()", "")}, loses=["q5"], says="is missing",
           keeps=["q1", "q2", "q3", "q6"]),
    # -- the design question -----------------------------------------------------------------
    Mutant("range_reversed", "solves each condition with the inequality flipped", {"feasible_lambda_range": '''
def feasible_lambda_range(sigmas, k, keep, attenuate):
    s = torch.sort(torch.as_tensor(sigmas, dtype=torch.float64).flatten(), descending=True).values
    lo = 0.0 if k == 0 else float(s[k - 1] ** 2 * (1 - keep) / keep)      # read as lam >= ...
    hi = math.inf if k >= len(s) else float(s[k] ** 2 * (1 - attenuate) / attenuate)  # read as lam <= ...
    if lo > hi:
        return None
    return (lo, hi)
'''}, loses=["q6"], keeps=["q1", "q2", "q3", "q5"], says="inequalities are reversed"),
    Mutant("range_s_not_squared", "s instead of s^2", {"feasible_lambda_range":
        REFERENCE_RANGE.replace("s[k - 1] ** 2", "s[k - 1]").replace("s[k] ** 2", "s[k]")},
        loses=["q6"], says="s instead of s^2", keeps=["q1", "q2", "q3", "q5"]),
    Mutant("range_open_interval", "lo == hi treated as empty", {"feasible_lambda_range":
        REFERENCE_RANGE.replace("if lo > hi:", "if lo >= hi:")}, loses=["q6"], says="the interval is open",
           keeps=["q1", "q2", "q3", "q5"]),
    Mutant("range_not_sorted", "takes sigmas in the order given", {"feasible_lambda_range":
        REFERENCE_RANGE.replace("torch.sort(torch.as_tensor(sigmas, dtype=torch.float64).flatten(), "
                                "descending=True).values", "torch.as_tensor(sigmas, dtype=torch.float64)")},
        loses=["q6"], says="order given", keeps=["q1", "q2", "q3", "q5"]),
    Mutant("range_no_empty_check", "returns (lo, hi) with lo > hi", {"feasible_lambda_range":
        REFERENCE_RANGE.replace("    if lo > hi:\n        return None\n", "")}, loses=["q6"], says="return None",
           keeps=["q1", "q2", "q3", "q5"]),
    Mutant("range_edge_cases_unhandled", "k = 0 indexes s[-1]; k = all runs off the end", {"feasible_lambda_range": '''
def feasible_lambda_range(sigmas, k, keep, attenuate):
    s = torch.sort(torch.as_tensor(sigmas, dtype=torch.float64), descending=True).values
    hi = float(s[k - 1] ** 2 * (1 - keep) / keep)
    lo = float(s[k] ** 2 * (1 - attenuate) / attenuate)
    return None if lo > hi else (lo, hi)
'''}, loses=["q6"], keeps=["q1", "q2", "q3", "q5"], says="k = 0 is not handled"),
]

VARIANTS = [
    Variant("tensor_losses_and_manual_descent",
            "losses as 0-d tensors via traces, reused by a hand-written descent with autograd.grad", {
        "reconstruction_loss": '''
def reconstruction_loss(W, X):
    R = X - W @ X
    return torch.trace(R @ R.T)
''',
        "regularization_loss": '''
def regularization_loss(W):
    return torch.sum(W * W)
''',
        "train_purifier": '''
def train_purifier(X, lam, steps, lr):
    W = torch.zeros(X.shape[0], X.shape[0], dtype=X.dtype, requires_grad=True)
    for _ in range(steps):
        loss = reconstruction_loss(W, X) + lam * regularization_loss(W)
        (grad,) = torch.autograd.grad(loss, W)
        with torch.no_grad():
            W -= lr * grad
    return W.detach()
'''}),
    Variant("solve_and_weight_decay", "normal equations with solve; SGD weight decay 2 lam; numpy range as a list", {
        "optimal_purifier": '''
def optimal_purifier(X, lam):
    G = X @ X.T
    A = G + lam * torch.eye(X.shape[0], dtype=X.dtype)
    return torch.linalg.solve(A, G)  # A^-1 G = G A^-1: they commute
''',
        "train_purifier": '''
def train_purifier(X, lam, steps, lr):
    W = torch.nn.Parameter(torch.zeros(X.shape[0], X.shape[0], dtype=X.dtype))
    optimizer = torch.optim.SGD([W], lr=lr, weight_decay=2 * lam)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.sum((W @ X - X) ** 2).backward()
        optimizer.step()
    return W.detach()
''',
        "feasible_lambda_range": '''
def feasible_lambda_range(sigmas, k, keep, attenuate):
    import numpy as np
    energy = np.sort(np.asarray(sigmas, dtype=np.float64))[::-1] ** 2
    hi = float(np.min(energy[:k] / keep - energy[:k])) if k > 0 else float("inf")
    lo = float(np.max(energy[k:] / attenuate - energy[k:])) if k < len(energy) else 0.0
    return [lo, hi] if lo <= hi else None
'''}),
    Variant("eigh_lbfgs_tensor_range", "eigh of X X^T; L-BFGS in float64 cast back; range as a tensor", {
        "optimal_purifier": '''
def optimal_purifier(X, lam):
    e, Q = torch.linalg.eigh(X @ X.T)
    e = e.clamp(min=0)
    return Q @ torch.diag(e / (e + lam)) @ Q.T
''',
        "train_purifier": '''
def train_purifier(X, lam, steps, lr):
    dtype, X = X.dtype, X.double()  # line searches need float64 to resolve the minimum
    W = torch.zeros(X.shape[0], X.shape[0], dtype=X.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS([W], max_iter=steps, tolerance_grad=0, tolerance_change=0,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.linalg.matrix_norm(X - W @ X) ** 2 + lam * torch.linalg.matrix_norm(W) ** 2
        loss.backward()
        return loss

    optimizer.step(closure)
    return W.detach().to(dtype)
''',
        "feasible_lambda_range": '''
def feasible_lambda_range(sigmas, k, keep, attenuate):
    ranked = sorted((float(v) for v in sigmas), reverse=True)
    upper = min([s * s * (1 - keep) / keep for s in ranked[:k]], default=math.inf)
    lower = max([s * s * (1 - attenuate) / attenuate for s in ranked[k:]], default=0.0)
    if lower > upper:
        return None
    return torch.tensor([lower, upper])
'''}),
    Variant("range_as_numpy_array", "the range returned as a numpy array np.array([lo, hi])", {
        "feasible_lambda_range": '''
def feasible_lambda_range(sigmas, k, keep, attenuate):
    import numpy as np
    s = np.sort(np.asarray(torch.as_tensor(sigmas, dtype=torch.float64)))[::-1]
    hi = np.inf if k == 0 else s[k - 1] ** 2 * (1 - keep) / keep
    lo = 0.0 if k >= len(s) else s[k] ** 2 * (1 - attenuate) / attenuate
    if lo > hi:
        return None
    return np.array([lo, hi])
'''}),
]
