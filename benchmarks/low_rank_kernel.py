"""Homework 1(f): the SSM kernel for A = I + p p^T, low-rank closed form vs the dense A.

Prints one table from one run: for each state size n, the median time of `ssm_kernel` on the
dense n x n matrix A (L matrix-vector products, O(L n^2)) and of `low_rank_ssm_kernel`
(four dot products and L scalar coefficients, O(n + L)), and their ratio:

    python benchmarks/low_rank_kernel.py
    python benchmarks/low_rank_kernel.py --threads 1 --length 512

The implementations are self-contained copies of the reference solution (they do not import the
course's notebooks). |p|^2 = 0.01 keeps (1 + |p|^2)^L, and so the kernel, finite.
"""
import argparse
import platform
import statistics
import time

import torch


def ssm_kernel(A, B, C, D, L):
    values, state = [torch.as_tensor(D, dtype=A.dtype)], B
    for _ in range(L):
        values.append(C @ state)
        state = A @ state
    return torch.stack(values)


def low_rank_ssm_kernel(p, B, C, D, L):
    s = p @ p
    steps = torch.arange(L, dtype=p.dtype)
    coefficients = torch.expm1(steps * torch.log1p(s)) / s if float(s) > 0 else steps
    rest = C @ B + coefficients * ((C @ p) * (p @ B))
    return torch.cat([torch.as_tensor(D, dtype=p.dtype).reshape(1), rest])


def median_ms(fn, *args, repeats):
    fn(*args)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048, 4096])
    parser.add_argument("--length", type=int, default=1024, help="kernel length L")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, float64, L = {args.length}")
    print(f"{'n':>6} {'dense A (ms)':>13} {'build A (ms)':>13} {'low rank (ms)':>14} {'dense / low rank':>17}")
    gen = torch.Generator().manual_seed(0)
    for n in args.sizes:
        p, B, C = (torch.randn(n, generator=gen, dtype=torch.float64) for _ in range(3))
        p = p * (0.1 / p.norm())
        build = median_ms(lambda: torch.eye(n, dtype=torch.float64) + torch.outer(p, p), repeats=args.repeats)
        A = torch.eye(n, dtype=torch.float64) + torch.outer(p, p)
        gap = (ssm_kernel(A, B, C, 0.5, args.length) - low_rank_ssm_kernel(p, B, C, 0.5, args.length)).abs().max()
        scale = ssm_kernel(A, B, C, 0.5, args.length).abs().max()
        assert gap <= 1e-9 * scale, f"the two kernels disagree at n = {n}"
        dense = median_ms(ssm_kernel, A, B, C, 0.5, args.length, repeats=args.repeats)
        low_rank = median_ms(low_rank_ssm_kernel, p, B, C, 0.5, args.length, repeats=args.repeats)
        print(f"{n:>6} {dense:>13.2f} {build:>13.2f} {low_rank:>14.3f} {dense / low_rank:>16.0f}x")


if __name__ == "__main__":
    main()
