"""Known mistakes and correct alternatives for ssm_forward_cpu."""
from tests.notebooks import Mutant, Variant

REFERENCE_KERNEL = '''
def make_conv_kernel(W, T):
    H = W.shape[0]
    block = torch.eye(H, dtype=W.dtype, device=W.device).unsqueeze(0)
    power = W
    while block.shape[0] < T:
        block = torch.cat([block, power @ block], dim=0)
        power = power @ power
    return block[:T].permute(1, 2, 0)
'''

LOW_RANK_COEFFICIENT = """
def low_rank_ssm_kernel(p, B, C, D, L):
    s = p @ p
    k = torch.arange(L, dtype=p.dtype)
    coefficients = {coefficients}
    rest = C @ B + coefficients * ((C @ p) * (p @ B))
    return torch.cat([torch.as_tensor([float(D)], dtype=p.dtype), rest])
"""
RIGHT_COEFFICIENTS = "(torch.pow(1 + s, k) - 1) / s if float(s) > 0 else k"


def low_rank_with(coefficients):
    return {"low_rank_ssm_kernel": LOW_RANK_COEFFICIENT.format(coefficients=coefficients)}


KERNEL_FROM_CB = '''
def ssm_kernel(A, B, C, D, L):
    A = torch.as_tensor(A); B = torch.as_tensor(B, dtype=A.dtype); C = torch.as_tensor(C, dtype=A.dtype)
    values, state = [], B
    for _ in range(L + 1):
        values.append(C @ state)
        state = A @ state
    return torch.stack(values)
'''

MUTANTS = [
    Mutant("kernel_without_direct_term", "K_0 = D left out of the SSM kernel", {"ssm_kernel": '''
def ssm_kernel(A, B, C, D, L):
    A = torch.as_tensor(A); B = torch.as_tensor(B, dtype=A.dtype); C = torch.as_tensor(C, dtype=A.dtype)
    values, state = [], B
    for _ in range(L):
        values.append(C @ state)
        state = A @ state
    return torch.stack(values)
'''}, loses=["q1"], keeps=["q2", "q3", "q4"], says="K_0 = D is missing"),
    Mutant("kernel_powers_off_by_one", "K_k = C A^k B instead of C A^(k-1) B", {"ssm_kernel": '''
def ssm_kernel(A, B, C, D, L):
    A = torch.as_tensor(A); B = torch.as_tensor(B, dtype=A.dtype); C = torch.as_tensor(C, dtype=A.dtype)
    values, state = [torch.as_tensor(D, dtype=A.dtype)], A @ B
    for _ in range(L):
        values.append(C @ state)
        state = A @ state
    return torch.stack(values)
'''}, loses=["q1"], says="off by one", keeps=["q2", "q3", "q4"]),
    Mutant("kernel_hardcoded_examples", "answers hard-coded to the homework's examples", {"ssm_kernel": '''
def ssm_kernel(A, B, C, D, L):
    if L == 4:
        return torch.tensor([float(D), 1.5, 1.2, 0.96, 0.768])
    return torch.tensor([float(D), 1.0, 0.7, 0.51])
'''}, loses=["q1"], keeps=["q2", "q3", "q4"], says="expected (7,)"),
    Mutant("unrolled_W_transposed", "W applied transposed in the loop", {"unrolled_ssm_forward": '''
def unrolled_ssm_forward(W, U, b, x):
    N, T, _ = x.shape
    h = x.new_zeros(N, W.shape[0])
    states = []
    for t in range(T):
        h = h @ W + x[:, t] @ U.T + b
        states.append(h)
    return torch.stack(states, dim=1)
'''}, loses=["q2", "q4"], keeps=["q1", "q3"], says="W is applied transposed"),
    Mutant("unrolled_includes_h0", "h_0 included in the output (h_0..h_(T-1))", {"unrolled_ssm_forward": '''
def unrolled_ssm_forward(W, U, b, x):
    N, T, _ = x.shape
    h = x.new_zeros(N, W.shape[0])
    states = []
    for t in range(T):
        states.append(h)
        h = h @ W.T + x[:, t] @ U.T + b
    return torch.stack(states, dim=1)
'''}, loses=["q2", "q4"], says="h_0", keeps=["q1", "q3"]),
    Mutant("unrolled_without_bias", "bias b missing", {"unrolled_ssm_forward": '''
def unrolled_ssm_forward(W, U, b, x):
    N, T, _ = x.shape
    h = x.new_zeros(N, W.shape[0])
    states = []
    for t in range(T):
        h = h @ W.T + x[:, t] @ U.T
        states.append(h)
    return torch.stack(states, dim=1)
'''}, loses=["q2", "q4"], says="bias b is missing", keeps=["q1", "q3"]),
    Mutant("unrolled_wrong_layout", "returns (N, H, T) instead of (N, T, H)", {"unrolled_ssm_forward": '''
def unrolled_ssm_forward(W, U, b, x):
    N, T, _ = x.shape
    h = x.new_zeros(N, W.shape[0])
    states = []
    for t in range(T):
        h = h @ W.T + x[:, t] @ U.T + b
        states.append(h)
    return torch.stack(states, dim=2)
'''}, loses=["q2"], says="wrong order", keeps=["q1", "q3"]),
    Mutant("kernel_index0_not_identity", "conv kernel starts at W^1", {"make_conv_kernel": '''
def make_conv_kernel(W, T):
    H = W.shape[0]
    block = W.unsqueeze(0)
    power = W
    while block.shape[0] < T:
        block = torch.cat([block, power @ block], dim=0)
        power = power @ power
    return block[:T].permute(1, 2, 0)
'''}, loses=["q3"], says="index 0 should be the identity", keeps=["q1", "q2"]),
    Mutant("kernel_sequential_products", "conv kernel built by T - 1 sequential products", {"make_conv_kernel": '''
def make_conv_kernel(W, T):
    mats = [torch.eye(W.shape[0], dtype=W.dtype)]
    for _ in range(T - 1):
        mats.append(W @ mats[-1])
    return torch.stack(mats, dim=-1)
'''}, loses=["q3"], keeps=["q1", "q2", "q4"], says="matrix products"),
    Mutant("kernel_transposed", "kernel holds (W^k)^T", {"make_conv_kernel": REFERENCE_KERNEL.replace(
        "return block[:T].permute(1, 2, 0)", "return block[:T].permute(2, 1, 0)")},
        loses=["q3", "q4"], says="transposed", keeps=["q1", "q2"]),
    Mutant("conv_not_flipped", "kernel not flipped for conv1d's cross-correlation", {"conv_ssm_forward": '''
def conv_ssm_forward(W, U, b, x):
    N, T, _ = x.shape
    z = x @ U.T + b
    weight = make_conv_kernel(W, T)
    z = F.pad(z.transpose(1, 2), (T - 1, 0))
    return F.conv1d(z, weight).transpose(1, 2)
'''}, loses=["q4"], keeps=["q1", "q2", "q3"], says="not flipped"),
    Mutant("conv_calls_the_loop", "convolution forward that just calls the loop", {"conv_ssm_forward": '''
def conv_ssm_forward(W, U, b, x):
    return unrolled_ssm_forward(W, U, b, x)
'''}, loses=["q4"], says="ran no convolution", keeps=["q1", "q2", "q3"]),
    Mutant("conv_right_padding", "padding on the right: outputs see the future", {"conv_ssm_forward": '''
def conv_ssm_forward(W, U, b, x):
    N, T, _ = x.shape
    z = x @ U.T + b
    weight = make_conv_kernel(W, T).flip(-1)
    z = F.pad(z.transpose(1, 2), (0, T - 1))
    return F.conv1d(z, weight).transpose(1, 2)
'''}, loses=["q4"], keeps=["q1", "q2", "q3"], says="the first output should be h_1"),
    Mutant("conv_only_power_of_two", "doubling that only works when T is a power of two", {"make_conv_kernel": '''
def make_conv_kernel(W, T):
    H = W.shape[0]
    block = torch.eye(H, dtype=W.dtype).unsqueeze(0)
    power = W
    for _ in range(int(math.log2(T))):
        block = torch.cat([block, power @ block], dim=0)
        power = power @ power
    return block.permute(1, 2, 0)

import math
'''}, loses=["q3"], keeps=["q1", "q2"], says="= (H, H, T)"),
    Mutant("float32_everywhere", "casts everything to float32, failing float64 precision", {"unrolled_ssm_forward": '''
def unrolled_ssm_forward(W, U, b, x):
    W, U, b, x = W.float(), U.float(), b.float(), x.float()
    N, T, _ = x.shape
    h = x.new_zeros(N, W.shape[0])
    states = []
    for t in range(T):
        h = h @ W.T + x[:, t] @ U.T + b
        states.append(h)
    return torch.stack(states, dim=1)
'''}, loses=["q2"], keeps=["q1", "q3"], says="float64): largest error"),
]

MUTANTS += [
    Mutant("kernel_starts_at_CB", "kernel [CB, CAB, ..., CA^L B]: D missing, every entry shifted by one",
           {"ssm_kernel": KERNEL_FROM_CB}, loses=["q1"], keeps=["q2", "q3", "q4", "q9"],
           says="K_0 should be the direct term D; every later entry is shifted by one step"),
    Mutant("kernel_starts_at_CB_float32", "the same shifted kernel, computed in float32",
           {"ssm_kernel": KERNEL_FROM_CB.replace(
               "A = torch.as_tensor(A);", "A = torch.as_tensor(A).float();")},
           loses=["q1"], keeps=["q2", "q3", "q4", "q9"],
           says="K_0 should be the direct term D; every later entry is shifted by one step"),
    Mutant("low_rank_builds_A", "right values from the dense A = I + p p^T", {"low_rank_ssm_kernel": '''
def low_rank_ssm_kernel(p, B, C, D, L):
    A = torch.eye(p.shape[0], dtype=p.dtype) + torch.outer(p, p)
    return ssm_kernel(A, B, C, D, L)
'''}, loses=["q9"], keeps=["q1", "q2", "q3", "q4"], says="built an n x n matrix"),
    Mutant("low_rank_matrix_power_loop", "A built, then L matrix products A^k", {"low_rank_ssm_kernel": '''
def low_rank_ssm_kernel(p, B, C, D, L):
    A = torch.eye(p.shape[0], dtype=p.dtype) + torch.outer(p, p)
    power, values = torch.eye(p.shape[0], dtype=p.dtype), [torch.as_tensor(float(D), dtype=p.dtype)]
    for _ in range(L):
        values.append(C @ power @ B)
        power = power @ A
    return torch.stack(values)
'''}, loses=["q9"], keeps=["q1", "q2", "q3", "q4"], says="built an n x n matrix"),
    Mutant("low_rank_matrix_free_loop", "A v = v + p (p . v) once per step: O(n L) work", {"low_rank_ssm_kernel": '''
def low_rank_ssm_kernel(p, B, C, D, L):
    values, state = [torch.as_tensor(float(D), dtype=p.dtype)], B
    for _ in range(L):
        values.append(C @ state)
        state = state + p * (p @ state)
    return torch.stack(values)
'''}, loses=["q9"], keeps=["q1", "q2", "q3", "q4"], says="multiplies a vector by A once per step"),
    Mutant("low_rank_drops_inverse_norm", "A^k = I + ((1+s)^k - 1) p p^T: the 1/|p|^2 dropped (transcript 004)",
           low_rank_with("torch.pow(1 + s, k) - 1"), loses=["q9"], keeps=["q1", "q2", "q3", "q4"],
           says="the factor 1/|p|^2 is missing"),
    Mutant("low_rank_powers_from_A1", "K_k = C A^k B: forgets that K_1 uses A^0 = I",
           low_rank_with(RIGHT_COEFFICIENTS.replace("torch.pow(1 + s, k)", "torch.pow(1 + s, k + 1)")
                         .replace("else k", "else k + 1")),
           loses=["q9"], keeps=["q1", "q2", "q3", "q4"], says="(A^0 = I)"),
    Mutant("low_rank_without_identity", "A^k written without its identity part", {"low_rank_ssm_kernel": '''
def low_rank_ssm_kernel(p, B, C, D, L):
    s = p @ p
    k = torch.arange(L, dtype=p.dtype)
    coefficients = (torch.pow(1 + s, k) - 1) / s if float(s) > 0 else k
    rest = coefficients * ((C @ p) * (p @ B))
    return torch.cat([torch.as_tensor([float(D)], dtype=p.dtype), rest])
'''}, loses=["q9"], keeps=["q1", "q2", "q3", "q4"], says="the identity part of A^k is missing"),
    Mutant("low_rank_starts_at_CB", "low-rank kernel [CB, ...]: K_0 = D left out, entries shifted",
           {"low_rank_ssm_kernel": '''
def low_rank_ssm_kernel(p, B, C, D, L):
    s = p @ p
    k = torch.arange(L + 1, dtype=p.dtype)
    coefficients = (torch.pow(1 + s, k) - 1) / s if float(s) > 0 else k
    return C @ B + coefficients * ((C @ p) * (p @ B))
'''}, loses=["q9"], keeps=["q1", "q2", "q3", "q4"], says="K_0 should be the direct term D"),
    Mutant("low_rank_direct_term_zero", "K_0 = 0 instead of D", {"low_rank_ssm_kernel": LOW_RANK_COEFFICIENT.format(
        coefficients=RIGHT_COEFFICIENTS).replace("[float(D)]", "[0.0]")},
           loses=["q9"], keeps=["q1", "q2", "q3", "q4"], says="K_0 should be the direct term D, not 0"),
    Mutant("low_rank_divides_by_zero", "((1+s)^k - 1)/s without the limit at p = 0 (NaN)",
           low_rank_with("(torch.pow(1 + s, k) - 1) / s"), loses=["q9"], keeps=["q1", "q2", "q3", "q4"],
           says="limit as |p|^2 -> 0"),
    Mutant("low_rank_python_floats", "right values, but the scalar recurrence in Python floats: uncountable",
           {"low_rank_ssm_kernel": '''
def low_rank_ssm_kernel(p, B, C, D, L):
    s, cb = float(p @ p), float(C @ B)
    cross = float(C @ p) * float(p @ B)
    values, coefficient = [float(D)], 0.0
    for _ in range(L):
        values.append(cb + coefficient * cross)
        coefficient = coefficient * (1 + s) + 1
    return torch.tensor(values, dtype=p.dtype)
'''}, loses=["q9"], keeps=["q1", "q2", "q3", "q4"], says="keep `s = p @ p` a 0-d tensor"),
]

VARIANTS = [
    Variant("kernel_recursive_matrix_power", "kernel from torch.linalg.matrix_power per entry", {"ssm_kernel": '''
def ssm_kernel(A, B, C, D, L):
    A = torch.as_tensor(A); B = torch.as_tensor(B, dtype=A.dtype); C = torch.as_tensor(C, dtype=A.dtype)
    rest = [C @ torch.linalg.matrix_power(A, k) @ B for k in range(L)]
    return torch.stack([torch.as_tensor(float(D), dtype=A.dtype)] + rest)
'''}),
    Variant("einsum_loop_and_nn_conv1d", "einsum in the loop, nn.Conv1d module, recursive doubling", {
        "unrolled_ssm_forward": '''
def unrolled_ssm_forward(W, U, b, x):
    h = torch.zeros(x.shape[0], W.shape[0], dtype=x.dtype)
    out = torch.empty(x.shape[0], x.shape[1], W.shape[0], dtype=x.dtype)
    for t in range(x.shape[1]):
        h = torch.einsum("ij,nj->ni", W, h) + torch.einsum("id,nd->ni", U, x[:, t]) + b
        out[:, t] = h
    return out
''',
        "make_conv_kernel": '''
def make_conv_kernel(W, T):
    if T == 1:
        return torch.eye(W.shape[0], dtype=W.dtype).unsqueeze(-1)
    half = make_conv_kernel(W, (T + 1) // 2)              # W^0 .. W^(m-1)
    m = half.shape[-1]
    W_m = W @ half[:, :, -1]                               # W^m
    upper = torch.einsum("ij,jkt->ikt", W_m, half)         # W^m .. W^(2m-1)
    return torch.cat([half, upper], dim=-1)[:, :, :T]
''',
        "conv_ssm_forward": '''
def conv_ssm_forward(W, U, b, x):
    N, T, _ = x.shape
    H = W.shape[0]
    conv = torch.nn.Conv1d(H, H, kernel_size=T, padding=T - 1, bias=False).to(x.dtype)
    with torch.no_grad():
        conv.weight.copy_(make_conv_kernel(W, T).flip(-1))
        out = conv((x @ U.T + b).transpose(1, 2))
    return out[:, :, :T].transpose(1, 2)
'''}),
    Variant("kernel_as_python_list", "a Python list of float64 numbers (it must not be rounded to float32)", {
        "ssm_kernel": '''
def ssm_kernel(A, B, C, D, L):
    A = torch.as_tensor(A); B = torch.as_tensor(B, dtype=A.dtype); C = torch.as_tensor(C, dtype=A.dtype)
    values, state = [float(D)], B
    for _ in range(L):
        values.append(float(C @ state))
        state = A @ state
    return values
'''}),
    Variant("kernel_by_squaring_and_index_doubling", "kernel built by doubling with preallocated output and "
            "index assignment; forward with nn.Conv1d and a bias-free module", {"make_conv_kernel": '''
def make_conv_kernel(W, T):
    H = W.shape[0]
    out = W.new_empty(H, H, T)
    out[:, :, 0] = torch.eye(H, dtype=W.dtype, device=W.device)
    filled, power = 1, W
    while filled < T:
        take = min(filled, T - filled)
        out[:, :, filled:filled + take] = torch.einsum("ij,jkt->ikt", power, out[:, :, :take])
        filled += take
        power = power @ power
    return out
'''}),
]

VARIANTS += [
    Variant("low_rank_closed_form_pow", "closed form with torch.pow", low_rank_with(RIGHT_COEFFICIENTS)),
    Variant("low_rank_scalar_recurrence", "c_(k+1) = (1 + s) c_k + 1 on 0-d tensors, a loop over L",
            {"low_rank_ssm_kernel": '''
def low_rank_ssm_kernel(p, B, C, D, L):
    s, cb, cross = p @ p, C @ B, (C @ p) * (p @ B)
    values, coefficient = [torch.as_tensor(D, dtype=p.dtype)], torch.zeros((), dtype=p.dtype)
    for _ in range(L):
        values.append(cb + coefficient * cross)
        coefficient = coefficient * (1 + s) + 1
    return torch.stack(values)
'''}),
    Variant("low_rank_cumprod", "powers of 1 + s by cumprod, coefficients by cumsum", {"low_rank_ssm_kernel": '''
def low_rank_ssm_kernel(p, B, C, D, L):
    s = torch.dot(p, p)
    powers = torch.cumprod(torch.cat([torch.ones(1, dtype=p.dtype), (1 + s).repeat(max(L - 1, 0))]), 0)[:L]
    coefficients = torch.cumsum(powers, 0) - powers  # c_k = 1 + (1+s) + ... + (1+s)^(k-1)
    rest = torch.dot(C, B) + coefficients * torch.dot(C, p) * torch.dot(p, B)
    return torch.cat([torch.tensor([D], dtype=p.dtype), rest])
'''}),
]
