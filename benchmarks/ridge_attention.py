"""Causal ridge attention: Sherman-Morrison recursion vs per-prefix solves vs the chunked (Woodbury) form.

Prints one table from one run, with ratios, for several sequence lengths n and key sizes d:

    python benchmarks/ridge_attention.py                   # CUDA when available, else CPU
    python benchmarks/ridge_attention.py --device cpu --threads 1 --out benchmarks/results/ridge_attention_cpu.txt

Methods (all compute row t = q_t^T (lam I + sum_{j<=t} k_j k_j^T)^(-1) sum_{j<=t} k_j v_j^T):
  recursion     Sherman-Morrison: n sequential O(d^2) updates of the inverse, O(n d^2) in all.
  prefix        the definition: for each t, rebuild the sums over pairs 0..t and solve,
                O(t d^2 + d^3) at step t, O(n^2 d^2 + n d^3) in all.
  prefix+sums   per-prefix solves, but with running sums: one d x d solve per step, O(n d^3).
  chunked       Woodbury on blocks of c = min(d, 64) keys: n / c sequential steps of block
                products, one c x c Cholesky and triangular solves each, O(n d^2) for c <= d.
The implementations are self-contained (they do not import the course's notebooks).
"""
import argparse
import json
import platform
import statistics
import sys
import time

import torch


def recursion(Q, K, V, lam):
    n, d = K.shape
    P = torch.eye(d, dtype=K.dtype, device=K.device) / lam
    S = torch.zeros(d, V.shape[1], dtype=K.dtype, device=K.device)
    rows = []
    for k, v, q in zip(K.unbind(0), V.unbind(0), Q.unbind(0)):  # views, without an indexing op per step
        Pk = torch.mv(P, k)
        if K.device.type == "cpu":  # fused in-place rank-one updates; reading the scalar costs nothing here
            P.addr_(Pk, Pk, alpha=-1.0 / (1.0 + float(torch.dot(k, Pk))))
        else:  # keep the scalar on the GPU: no host synchronization inside the loop
            P = P - torch.outer(Pk, Pk / (1.0 + torch.dot(k, Pk)))
        S.addr_(k, v)
        rows.append(torch.mv(S.T, torch.mv(P, q)))
    return torch.stack(rows)


def prefix(Q, K, V, lam):
    n, d = K.shape
    eye = lam * torch.eye(d, dtype=K.dtype, device=K.device)
    out = torch.empty(n, V.shape[1], dtype=K.dtype, device=K.device)
    for t in range(n):
        Kt, Vt = K[: t + 1], V[: t + 1]
        out[t] = Q[t] @ torch.linalg.solve(Kt.T @ Kt + eye, Kt.T @ Vt)
    return out


def prefix_with_sums(Q, K, V, lam):
    n, d = K.shape
    gram = lam * torch.eye(d, dtype=K.dtype, device=K.device)
    S = torch.zeros(d, V.shape[1], dtype=K.dtype, device=K.device)
    out = torch.empty(n, V.shape[1], dtype=K.dtype, device=K.device)
    for t in range(n):
        gram = torch.addr(gram, K[t], K[t])
        S = torch.addr(S, K[t], V[t])
        out[t] = Q[t] @ torch.linalg.solve(gram, S)
    return out


def chunked(Q, K, V, lam, chunk):
    n, d = K.shape
    P = torch.eye(d, dtype=K.dtype, device=K.device) / lam
    W = torch.zeros(d, V.shape[1], dtype=K.dtype, device=K.device)
    pieces = []
    for start in range(0, n, chunk):
        Qc, Kc, Vc = Q[start : start + chunk], K[start : start + chunk], V[start : start + chunk]
        c = Kc.shape[0]
        KP = Kc @ P
        L = torch.linalg.cholesky(torch.eye(c, dtype=K.dtype, device=K.device) + KP @ Kc.T)
        R = Vc - Kc @ W
        Z = torch.linalg.solve_triangular(L, R, upper=False)
        Y = torch.linalg.solve_triangular(L, torch.tril((Qc @ P) @ Kc.T).T, upper=False)
        pieces.append(Qc @ W + torch.tril(Y.T) @ Z)
        P = P - KP.T @ torch.cholesky_solve(KP, L)
        W = W + P @ (Kc.T @ R)
    return torch.cat(pieces)


def reference(Q, K, V, lam):
    """float64, every prefix at once (cumulative sums and one batched solve), on the CPU."""
    Q, K, V = (t.detach().cpu().double() for t in (Q, K, V))
    d = K.shape[1]
    grams = lam * torch.eye(d, dtype=torch.float64) + torch.cumsum(K[:, :, None] * K[:, None, :], 0)
    crosses = torch.cumsum(K[:, :, None] * V[:, None, :], 0)
    return (Q[:, None, :] @ torch.linalg.solve(grams, crosses))[:, 0]


def timed(fn, device, budget_s=2.0, max_repeats=7):
    """Median seconds: one warm-up call, then repeats while the total stays under budget_s."""
    def once():
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, result

    first, result = once()  # also the warm-up
    times = []
    if first < budget_s:
        for _ in range(max_repeats):
            seconds, result = once()
            times.append(seconds)
            if sum(times) > budget_s:
                break
    return (statistics.median(times) if times else first), result


def _load():
    try:
        import os
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({torch.get_num_threads()} torch threads)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--skip-prefix-above", type=int, default=4096,
                        help="skip the O(n^2 d^2) per-prefix solve for longer sequences")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 avoids thread start-up costs "
                             "and contention on a busy machine")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--json", help="also write the measurements to this file (tools/gpu_check.py reads it)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    lines = [f"causal ridge attention on {device_name(device)}; torch {torch.__version__}, {args.dtype}, "
             f"lam = {args.lam:g}, d_v = d",
             "times are medians in ms; 'err' is the largest error of any method against a float64 reference",
             f"machine load average at start (1, 5, 15 min): {_load()}; other processes inflate and scatter times",
             "",
             f"{'d':>4} {'n':>6} {'chunk':>5} | {'recursion':>10} {'prefix':>10} {'prefix+sums':>12} {'chunked':>10} | "
             f"{'prefix/rec':>10} {'sums/rec':>9} {'rec/chunk':>9} {'err':>8}"]
    print("\n".join(lines), flush=True)
    record = {"device": device_name(device), "torch": torch.__version__, "dtype": args.dtype, "rows": []}
    for d in args.dims:
        for n in args.lengths:
            gen = torch.Generator().manual_seed(1000 * d + n)
            Q, K, V = (torch.randn(n, d, generator=gen, dtype=torch.float64) for _ in range(3))
            ref = reference(Q, K, V, args.lam)
            Q, K, V = (t.to(device=device, dtype=dtype) for t in (Q, K, V))
            chunk = min(d, 64)
            runs = {"recursion": lambda: recursion(Q, K, V, args.lam),
                    "prefix+sums": lambda: prefix_with_sums(Q, K, V, args.lam),
                    "chunked": lambda: chunked(Q, K, V, args.lam, chunk)}
            if n <= args.skip_prefix_above:
                runs["prefix"] = lambda: prefix(Q, K, V, args.lam)
            ms, err = {}, 0.0
            for name, fn in runs.items():
                seconds, out = timed(fn, device)
                ms[name] = 1e3 * seconds
                err = max(err, float((out.double().cpu() - ref).abs().max() / ref.abs().max()))
            pre = ms.get("prefix", float("nan"))
            line = (f"{d:>4} {n:>6} {chunk:>5} | {ms['recursion']:>10.1f} {pre:>10.1f} {ms['prefix+sums']:>12.1f} "
                    f"{ms['chunked']:>10.1f} | {pre / ms['recursion']:>9.1f}x "
                    f"{ms['prefix+sums'] / ms['recursion']:>8.1f}x "
                    f"{ms['recursion'] / ms['chunked']:>8.1f}x {err:>8.1e}")
            lines.append(line)
            print(line, flush=True)
            record["rows"].append({"d": d, "n": n, "chunk": chunk, "ms": ms, "err": err})
    if args.out:
        with open(args.out, "w") as handle:
            handle.write("\n".join(lines) + "\n")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
