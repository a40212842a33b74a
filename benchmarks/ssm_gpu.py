"""Benchmark the forward passes of the ssm_forward_gpu assignment side by side.

    python benchmarks/ssm_gpu.py [--lengths 64 256 1024] [--states 16 64] [--batch 8] [--inputs 16] [--json PATH]

Runs on CUDA when a GPU is present, otherwise on the CPU (it prints which). For each state size H
and length T it prints the median time of one forward pass of the diagonal SSM
h_t = w * h_(t-1) + U x_t + b computed five ways: the unrolled loop and the full convolution (both
given W = diag(w) as an H x H matrix), the depthwise convolution, the FFT, and the parallel scan
(a_t = w, u_t = U x_t + b; the projection is inside the timed call for all five). Then the speedup
ratios, and for the three diagonal methods the bytes they must move at least (x in, h out) per
second, against the device's copy bandwidth ("bw time" = those bytes / bandwidth).

The implementations, and the timer, are the reference solutions from the master notebook
solutions/ssm_forward_gpu.ipynb, loaded from its cells.
"""
import argparse
import ast
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import nbformat
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
MASTER = ROOT / "solutions" / "ssm_forward_gpu.ipynb"
NEEDED = ("unrolled_ssm_forward", "make_conv_kernel", "conv_ssm_forward", "make_diag_conv_kernel",
          "diag_conv_ssm_forward", "fft_ssm_forward", "scan_ssm_forward", "cuda_time")
TARGETS = ("targets (H100, float32): full conv >= 20x faster than unrolled at T = 4096; depthwise >= 10x "
           "faster than full conv; FFT within 3x of the bandwidth time at long T")


def load_reference_solutions(path=MASTER):
    """Execute the master notebook's cells that define the graded functions; return them by name."""
    namespace = {"torch": torch, "F": F, "math": math, "statistics": statistics, "time": time}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        if names & set(NEEDED):
            exec(compile(cell.source, str(path), "exec"), namespace)
    missing = [name for name in NEEDED if name not in namespace]
    if missing:
        sys.exit(f"{path} does not define {missing}")
    return {name: namespace[name] for name in NEEDED}


def copy_bandwidth(device, cuda_time):
    """Bytes per second of a large device-to-device copy (read + write)."""
    numel = (256 if device.type == "cuda" else 32) * 2**20
    src = torch.ones(numel, device=device)
    dst = torch.empty_like(src)
    ms = cuda_time(dst.copy_, src, warmup=2, repeats=10 if device.type == "cuda" else 3)
    return 2 * src.numel() * src.element_size() / (ms / 1e3)


def nominal_bandwidth(device):
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", None), getattr(props, "memory_bus_width", None)
    if not clock_khz or not bus_bits:
        return None
    return 2 * clock_khz * 1e3 * bus_bits / 8  # double data rate


def main(argv=None):
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+",
                        default=[64, 256, 1024, 4096, 16384] if cuda else [64, 256, 1024, 4096])
    parser.add_argument("--states", type=int, nargs="+", default=[16, 64] if cuda else [16])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--inputs", type=int, default=16)
    parser.add_argument("--budget", type=float, default=2e13 if cuda else 3e9,
                        help="skip a convolution whose multiply-adds exceed this (the loop: T > --max-unrolled)")
    parser.add_argument("--max-unrolled", type=int, default=16384 if cuda else 4096)
    parser.add_argument("--tf32", action="store_true", help="allow TF32 in matmuls and convolutions")
    parser.add_argument("--json", help="also write the measurements to this file (tools/gpu_check.py reads it)")
    args = parser.parse_args(argv)

    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    device = torch.device("cuda" if cuda else "cpu")
    ref = load_reference_solutions()
    cuda_time = ref["cuda_time"]

    def scan_forward(w, U, b, x):
        z = x @ U.T + b
        return ref["scan_ssm_forward"](w.expand_as(z), z)

    def full(method):
        return lambda w, U, b, x: ref[method](torch.diag(w), U, b, x)

    methods = {"unrolled": full("unrolled_ssm_forward"), "full conv": full("conv_ssm_forward"),
               "depthwise": ref["diag_conv_ssm_forward"], "FFT": ref["fft_ssm_forward"], "scan": scan_forward}

    def skipped(name, N, T, H):
        if name == "unrolled":
            return T > args.max_unrolled
        if name == "full conv":
            return N * H * H * T * T > args.budget
        if name == "depthwise":
            return N * H * T * T > args.budget
        return False

    def measure(fn, inputs):
        first = cuda_time(fn, *inputs, warmup=1, repeats=1)
        if first > 200:  # slow: a few repeats are enough
            return statistics.median([first, *(cuda_time(fn, *inputs, warmup=0, repeats=1) for _ in range(2))])
        return cuda_time(fn, *inputs, warmup=2, repeats=10 if cuda else 5)

    name = torch.cuda.get_device_name(device) if cuda else (platform.processor() or platform.machine())
    bandwidth = copy_bandwidth(device, cuda_time)
    nominal = nominal_bandwidth(device)
    print(f"device: {device} ({name}); torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"float32; TF32 {'on' if args.tf32 else 'off'}")
    print(f"copy bandwidth (measured): {bandwidth / 1e9:.1f} GB/s"
          + (f"; nominal {nominal / 1e9:.0f} GB/s" if nominal else ""))
    print(f"batch N = {args.batch}, input size D = {args.inputs}; times are medians in ms; '-' = skipped "
          "(too slow here)\n")
    record = {"device": name, "cuda": cuda, "torch": torch.__version__, "bandwidth_gb_s": bandwidth / 1e9, "rows": []}

    for H in args.states:
        header = (f"{'T':>6} | " + " ".join(f"{m:>10}" for m in methods)
                  + f" | {'unr/full':>8} {'full/dw':>8} {'dw/FFT':>8} {'unr/scan':>8}"
                  + f" | {'bw time':>8} {'dw GB/s':>8} {'FFT GB/s':>8} {'scan GB/s':>9} {'FFT/bw':>7} {'agree':>7}")
        print(f"H = {H}")
        print(header)
        print("-" * len(header))
        for T in args.lengths:
            gen = torch.Generator().manual_seed(T)
            w = (torch.rand(H, generator=gen) * 2 - 1) * 0.95
            U = torch.randn(H, args.inputs, generator=gen) / math.sqrt(args.inputs)
            b, x = torch.randn(H, generator=gen), torch.randn(args.batch, T, args.inputs, generator=gen)
            inputs = tuple(t.to(device) for t in (w, U, b, x))
            times, outputs = {}, {}
            for label, fn in methods.items():
                if skipped(label, args.batch, T, H):
                    times[label] = math.nan
                    continue
                outputs[label] = fn(*inputs)
                times[label] = measure(fn, inputs)
            base = outputs["FFT"].double()
            agree = max(float((out.double() - base).abs().max() / base.abs().max()) for out in outputs.values())
            min_bytes = 4 * (x.numel() + args.batch * T * H + U.numel() + 2 * H)
            bw_ms = min_bytes / bandwidth * 1e3

            def ratio(a, b):
                return times[a] / times[b]

            def rate(label):
                return min_bytes / (times[label] / 1e3) / 1e9

            cells = " ".join(f"{'-' if math.isnan(times[m]) else format(times[m], '.3g'):>10}" for m in methods)
            ratios = " ".join("       -" if math.isnan(r) else f"{r:8.3g}" for r in (
                ratio("unrolled", "full conv"), ratio("full conv", "depthwise"), ratio("depthwise", "FFT"),
                ratio("unrolled", "scan")))
            rates = (f"{bw_ms:8.3g} " + " ".join("       -" if math.isnan(times[m]) else f"{rate(m):8.3g}"
                                                  for m in ("depthwise", "FFT")) + f" {rate('scan'):9.3g}"
                     + f" {times['FFT'] / bw_ms:7.3g} {agree:7.1e}")
            print(f"{T:>6} | {cells} | {ratios} | {rates}")
            record["rows"].append({"H": H, "T": T, "bw_ms": bw_ms, "agree": agree,
                                   "ms": {m: None if math.isnan(v) else v for m, v in times.items()}})
        print()
    print("unr/full = unrolled time / full conv time; full/dw = full conv / depthwise; dw/FFT = depthwise / FFT;")
    print("unr/scan = unrolled / scan. bw time = (x in + h out, float32) / copy bandwidth; X GB/s = those bytes")
    print("/ X's time; FFT/bw = FFT time / bw time; agree = largest difference between methods, relative.")
    print(TARGETS + ("" if cuda else " (not measurable here: no CUDA GPU)"))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
