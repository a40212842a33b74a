"""Known mistakes and correct alternatives for ssm_forward_gpu.

Some mistakes only show on a GPU (a timer that does not synchronise, a tensor created on the CPU
inside a function given CUDA inputs): their `loses` depends on whether this machine has CUDA, and on
a machine without one `keeps` records that the CPU tests cannot see them.
"""
import torch

from tests.notebooks import Mutant, Variant

CUDA = torch.cuda.is_available()

REFERENCE_DIAG_CONV = '''
def diag_conv_ssm_forward(w, U, b, x):
    N, T, _ = x.shape
    H = w.shape[0]
    z = x @ U.T + b
    weight = make_diag_conv_kernel(w, T).flip(-1)
    z = F.pad(z.transpose(1, 2), (T - 1, 0))
    return F.conv1d(z, weight, groups=H).transpose(1, 2)
'''

REFERENCE_SCAN = '''
def scan_ssm_forward(a, u):
    A, V = a, u
    T = u.shape[1]
    d = 1
    while d < T:
        A_earlier = F.pad(A[:, :-d], (0, 0, d, 0), value=1.0)
        V_earlier = F.pad(V[:, :-d], (0, 0, d, 0), value=0.0)
        V = A * V_earlier + V
        A = A * A_earlier
        d *= 2
    return V
'''

MUTANTS = [
    # -- the three CPU functions, on any device ---------------------------------------------------
    Mutant("unrolled_hardcoded_cuda", "not device-agnostic: the state is moved to CUDA with .cuda()",
           {"unrolled_ssm_forward": '''
def unrolled_ssm_forward(W, U, b, x):
    N, T, _ = x.shape
    h = x.new_zeros(N, W.shape[0]).cuda()
    states = []
    for t in range(T):
        h = h @ W.T + x[:, t] @ U.T + b
        states.append(h)
    return torch.stack(states, dim=1)
'''}, loses=["q1"], keeps=["q2", "q4", "q6", "q8", "q9"], says="raised an error" if not CUDA else "same device"),
    Mutant("diag_kernel_exponents_on_cpu", "not device-agnostic: torch.arange(T) without device=, so on "
           "CUDA inputs the kernel mixes devices (the CPU tests cannot see it)", {"make_diag_conv_kernel": '''
def make_diag_conv_kernel(w, T):
    exponents = torch.arange(T, dtype=w.dtype)
    return (w.unsqueeze(-1) ** exponents).unsqueeze(1)
'''}, loses=["q6", "q7", "q8"] if CUDA else [], keeps=[] if CUDA else ["q6", "q7", "q8"],
           says="same device" if CUDA else ""),
    # -- cuda_time -------------------------------------------------------------------------------
    Mutant("cuda_time_without_synchronize", "wall clock around CUDA calls, no synchronisation: measures "
           "the launch (only a GPU grader can see it)", {"cuda_time": '''
def cuda_time(fn, *args, warmup=3, repeats=10):
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
'''}, loses=["q4"] if CUDA else [], keeps=[] if CUDA else ["q4"],
        says="measured the launch" if CUDA else ""),
    Mutant("cuda_time_events_always", "CUDA events even without a GPU: no wall-clock fallback", {"cuda_time": '''
def cuda_time(fn, *args, warmup=3, repeats=10):
    for _ in range(warmup):
        fn(*args)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*args)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)
'''}, loses=[] if CUDA else ["q4"], keeps=["q1", "q2", "q3", "q6", "q7", "q8", "q9"],
           says="raised an error" if not CUDA else ""),
    Mutant("cuda_time_in_seconds", "returns seconds instead of milliseconds", {"cuda_time": '''
def cuda_time(fn, *args, warmup=3, repeats=10):
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
'''}, loses=["q4"], says="not seconds", keeps=["q1", "q2", "q3", "q6", "q7", "q8", "q9"]),
    Mutant("cuda_time_ignores_arguments", "fixed counts: no warm-up, ten timed calls whatever is asked",
           {"cuda_time": '''
def cuda_time(fn, *args, warmup=3, repeats=10):
    times = []
    for _ in range(10):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
'''}, loses=["q4"], says="warmup", keeps=["q1", "q2", "q3", "q6", "q7", "q8", "q9"]),
    # -- the diagonal kernel and the depthwise convolution ----------------------------------------
    Mutant("diag_kernel_starts_at_w", "diagonal kernel index 0 is w, not ones", {"make_diag_conv_kernel": '''
def make_diag_conv_kernel(w, T):
    exponents = torch.arange(1, T + 1, dtype=w.dtype, device=w.device)
    return (w.unsqueeze(-1) ** exponents).unsqueeze(1)
'''}, loses=["q6", "q7", "q8"], keeps=["q1", "q2", "q3", "q4", "q9"], says="index 0 should be all ones"),
    Mutant("diag_kernel_flat", "diagonal kernel of shape (H, T), without the group axis", {"make_diag_conv_kernel": '''
def make_diag_conv_kernel(w, T):
    return w.unsqueeze(-1) ** torch.arange(T, dtype=w.dtype, device=w.device)
'''}, loses=["q6"], says="(H, 1, T)", keeps=["q1", "q2", "q3", "q4", "q9"]),
    Mutant("depthwise_without_groups", "conv1d with the (H, 1, T) kernel but without groups=H",
           {"diag_conv_ssm_forward": REFERENCE_DIAG_CONV.replace(", groups=H)", ")")},
           loses=["q7"], keeps=["q6", "q8", "q9"], says="to have 1 channels"),
    Mutant("depthwise_one_conv_per_channel", "H separate conv1d calls, one per channel", {"diag_conv_ssm_forward": '''
def diag_conv_ssm_forward(w, U, b, x):
    N, T, _ = x.shape
    z = x @ U.T + b
    weight = make_diag_conv_kernel(w, T).flip(-1)
    z = F.pad(z.transpose(1, 2), (T - 1, 0))
    channels = [F.conv1d(z[:, i:i + 1], weight[i:i + 1]) for i in range(w.shape[0])]
    return torch.cat(channels, dim=1).transpose(1, 2)
'''}, loses=["q7"], keeps=["q6", "q8"], says="one per channel"),
    Mutant("depthwise_as_full_kernel", "a full (H, H, T) kernel that is zero off the diagonal, one full conv",
           {"diag_conv_ssm_forward": '''
def diag_conv_ssm_forward(w, U, b, x):
    N, T, _ = x.shape
    z = x @ U.T + b
    weight = torch.diag_embed(make_diag_conv_kernel(w, T)[:, 0].T).permute(1, 2, 0).flip(-1)
    z = F.pad(z.transpose(1, 2), (T - 1, 0))
    return F.conv1d(z, weight).transpose(1, 2)
'''}, loses=["q7"], keeps=["q6", "q8"], says="would take" if not CUDA else "faster"),
    Mutant("diag_conv_calls_the_loop", "depthwise forward that calls the loop with diag(w)",
           {"diag_conv_ssm_forward": '''
def diag_conv_ssm_forward(w, U, b, x):
    return unrolled_ssm_forward(torch.diag(w), U, b, x)
'''}, loses=["q7"], says="ran no convolution", keeps=["q1", "q2", "q3", "q4", "q6", "q8", "q9"]),
    # -- the FFT ---------------------------------------------------------------------------------
    Mutant("fft_without_padding", "FFT of length T: circular wrap-around", {"fft_ssm_forward": '''
def fft_ssm_forward(w, U, b, x):
    N, T, _ = x.shape
    z = x @ U.T + b
    kernel = make_diag_conv_kernel(w, T)[:, 0]
    spectrum = torch.fft.rfft(z, n=T, dim=1) * torch.fft.rfft(kernel.T, n=T, dim=0)
    return torch.fft.irfft(spectrum, n=T, dim=1)
'''}, loses=["q8"], keeps=["q6", "q7", "q9"], says="circular convolution"),
    Mutant("fft_is_a_convolution", "the FFT forward pass calls the depthwise convolution", {"fft_ssm_forward": '''
def fft_ssm_forward(w, U, b, x):
    return diag_conv_ssm_forward(w, U, b, x)
'''}, loses=["q8"], says="FFT", keeps=["q1", "q2", "q3", "q4", "q6", "q7", "q9"]),
    # -- the scan --------------------------------------------------------------------------------
    Mutant("scan_sequential_loop", "the scan done as a loop over time", {"scan_ssm_forward": '''
def scan_ssm_forward(a, u):
    h = torch.zeros_like(u[:, 0])
    states = []
    for t in range(u.shape[1]):
        h = a[:, t] * h + u[:, t]
        states.append(h)
    return torch.stack(states, dim=1)
'''}, loses=["q9"], keeps=["q6", "q7", "q8"], says="loops over time"),
    Mutant("scan_wrong_combine_order", "combine with the later pair applied first",
           {"scan_ssm_forward": REFERENCE_SCAN.replace("V = A * V_earlier + V", "V = A_earlier * V + V_earlier")},
           loses=["q9"],
           keeps=["q1", "q2", "q3", "q4", "q6", "q7", "q8"], says="does not follow h_t = a_t * h_(t-1) + u_t"),
    Mutant("scan_exclusive", "exclusive scan: returns h_0 .. h_(T-1)", {"scan_ssm_forward": REFERENCE_SCAN.replace(
        "    return V\n", "    return F.pad(V[:, :-1], (0, 0, 1, 0))\n")}, loses=["q9"], says="exclusive scan",
           keeps=["q1", "q2", "q3", "q4", "q6", "q7", "q8"]),
    Mutant("scan_prefix_product_trick", "h_t = P_t cumsum(u / P): under- and overflows", {"scan_ssm_forward": '''
def scan_ssm_forward(a, u):
    P = torch.cumprod(a, dim=1)
    return P * torch.cumsum(u / P, dim=1)
'''}, loses=["q9"], keeps=["q1", "q2", "q3", "q4", "q6", "q7", "q8"], says="some a_t = 0"),
]

VARIANTS = [
    Variant("cumprod_kernel_module_conv_complex_fft", "cumprod kernel, nn.Conv1d(groups=H) module, "
            "complex FFT of a power-of-two length in (N, H, T) layout, timer with synchronize", {
        "make_diag_conv_kernel": '''
def make_diag_conv_kernel(w, T):
    steps = torch.cat([torch.ones_like(w).unsqueeze(-1), w.unsqueeze(-1).expand(-1, T - 1)], dim=-1)
    return torch.cumprod(steps, dim=-1).unsqueeze(1)
''',
        "diag_conv_ssm_forward": '''
def diag_conv_ssm_forward(w, U, b, x):
    N, T, _ = x.shape
    H = w.shape[0]
    conv = torch.nn.Conv1d(H, H, kernel_size=T, padding=T - 1, groups=H, bias=False)
    conv = conv.to(device=x.device, dtype=x.dtype)
    with torch.no_grad():
        conv.weight.copy_(make_diag_conv_kernel(w, T).flip(-1))
        out = conv(torch.einsum("hd,ntd->nht", U, x) + b[:, None])
    return out[:, :, :T].transpose(1, 2)
''',
        "fft_ssm_forward": '''
def fft_ssm_forward(w, U, b, x):
    N, T, _ = x.shape
    n = 1 << (2 * T - 1).bit_length()
    z = torch.einsum("hd,ntd->nht", U, x) + b[:, None]
    k = w.unsqueeze(-1) ** torch.arange(T, dtype=w.dtype, device=w.device)
    out = torch.fft.ifft(torch.fft.fft(z, n=n) * torch.fft.fft(k, n=n)).real
    return out[..., :T].transpose(1, 2)
''',
        "cuda_time": '''
def cuda_time(fn, *args, warmup=3, repeats=10):
    cuda = torch.cuda.is_available()
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*args)
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return times[len(times) // 2]
'''}),
    Variant("recursive_scan_preallocated_loop_doubling_kernel", "odd-even recursive scan, preallocated "
            "output with addmm in the loop, diagonal kernel by doubling", {
        "scan_ssm_forward": '''
def scan_ssm_forward(a, u):
    T = u.shape[1]
    if T == 1:
        return u
    even = T - T % 2
    pair_a = a[:, 1::2] * a[:, 0:even:2]
    pair_u = a[:, 1::2] * u[:, 0:even:2] + u[:, 1::2]
    h_odd = scan_ssm_forward(pair_a, pair_u)  # h at (0-based) positions 1, 3, 5, ...
    h_even = u[:, 0::2].clone()
    h_even[:, 1:] = a[:, 2::2] * h_odd[:, :h_even.shape[1] - 1] + u[:, 2::2]
    out = torch.empty_like(u)
    out[:, 0::2] = h_even
    out[:, 1::2] = h_odd
    return out
''',
        "unrolled_ssm_forward": '''
def unrolled_ssm_forward(W, U, b, x):
    N, T, _ = x.shape
    drive = x @ U.T + b
    out = x.new_empty(N, T, W.shape[0])
    h = x.new_zeros(N, W.shape[0])
    for t in range(T):
        h = torch.addmm(drive[:, t], h, W.T)
        out[:, t] = h
    return out
''',
        "make_diag_conv_kernel": '''
def make_diag_conv_kernel(w, T):
    block = torch.ones_like(w).unsqueeze(-1)
    power = w.unsqueeze(-1)
    while block.shape[-1] < T:
        block = torch.cat([block, power * block], dim=-1)
        power = power * power
    return block[:, :T].unsqueeze(1)
'''}),
    Variant("blelloch_scan", "work-efficient scan: an up-sweep and a down-sweep over a padded power-of-two "
            "length, 2 log2(T) rounds, written with strided slice assignment", {"scan_ssm_forward": '''
def scan_ssm_forward(a, u):
    """Blelloch: an up-sweep and a down-sweep over a power-of-two length, O(T) work."""
    N, T, H = u.shape
    P = 1
    while P < T:
        P *= 2
    A = torch.ones(N, P, H, dtype=u.dtype, device=u.device)
    V = torch.zeros(N, P, H, dtype=u.dtype, device=u.device)
    A[:, :T], V[:, :T] = a, u
    d = 1
    while d < P:  # up-sweep: each right child becomes the combination of its subtree
        left, right = slice(d - 1, P, 2 * d), slice(2 * d - 1, P, 2 * d)
        V[:, right] = A[:, right] * V[:, left] + V[:, right]
        A[:, right] = A[:, right] * A[:, left]
        d *= 2
    A[:, P - 1], V[:, P - 1] = 1.0, 0.0
    d = P // 2
    while d >= 1:  # down-sweep: exclusive prefixes
        left, right = slice(d - 1, P, 2 * d), slice(2 * d - 1, P, 2 * d)
        A_left, V_left = A[:, left].clone(), V[:, left].clone()
        A_up, V_up = A[:, right].clone(), V[:, right].clone()
        A[:, left], V[:, left] = A_up, V_up
        A[:, right], V[:, right] = A_up * A_left, A_left * V_up + V_left
        d //= 2
    return a * V[:, :T] + u
'''}),
    Variant("hillis_steele_scan_with_cat", "Hillis-Steele rounds written with cat and clone instead of pad",
            {"scan_ssm_forward": '''
def scan_ssm_forward(a, u):
    A, V = a.clone(), u.clone()
    d = 1
    while d < u.shape[1]:
        ones = torch.ones_like(A[:, :d])
        zeros = torch.zeros_like(V[:, :d])
        A_prev = torch.cat([ones, A[:, :-d]], dim=1)
        V_prev = torch.cat([zeros, V[:, :-d]], dim=1)
        V = A * V_prev + V
        A = A * A_prev
        d *= 2
    return V
'''}),
]
