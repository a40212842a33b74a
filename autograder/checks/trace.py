"""Count the tensor operations a function dispatches.

Counting operations, not seconds, makes structure checks independent of machine speed:
a Python loop over T time steps shows up as ~T dispatched ops, a doubling construction as
~log2(T) matrix products.
"""
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

MATMUL_OPS = {"mm", "bmm", "addmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "vdot",
              "_linalg_eigh", "linalg_eig", "_linalg_solve_ex", "linalg_solve_triangular"}
MATRIX_PRODUCT_OPS = {"mm", "bmm", "addmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "vdot"}
CONVOLUTION_OPS = {"convolution", "_convolution", "conv1d", "conv2d", "cudnn_convolution",
                   "mkldnn_convolution", "_slow_conv2d_forward", "slow_conv3d_forward",
                   "convolution_overrideable", "_nnpack_spatial_convolution"}
FFT_OPS = {"_fft_r2c", "_fft_c2r", "_fft_c2c"}
BOOKKEEPING_OPS = {"detach", "alias", "lift_fresh", "_to_copy", "clone", "copy_", "empty",
                   "empty_like", "zeros", "zeros_like", "ones", "ones_like", "view", "_unsafe_view",
                   "t", "transpose", "permute", "expand", "reshape", "contiguous", "squeeze",
                   "unsqueeze", "select", "slice", "as_strided", "resize_", "set_", "new_empty",
                   "new_zeros", "fill_", "zero_", "eye", "arange", "_local_scalar_dense", "flip",
                   "unbind", "split", "split_with_sizes", "chunk", "cat", "stack", "full",
                   "full_like", "new_full", "scalar_tensor", "lift_fresh_copy", "item",
                   "is_nonzero", "_has_compatible_shallow_copy_type", "index_put_",
                   "pad", "constant_pad_nd", "_reshape_alias", "diagonal", "diag_embed",
                   "view_as_real", "view_as_complex", "_conj", "resolve_conj", "resolve_neg",
                   "sym_size", "sym_stride", "sym_numel", "narrow", "repeat", "movedim"}


@dataclass
class OpCounts:
    """How many times each aten op ran (overload names dropped), and the number of elements of
    the largest tensor an arithmetic op produced (an n x n intermediate shows up there even when
    the op counts look right)."""

    counts: Counter = field(default_factory=Counter)
    largest_output: int = 0

    def total(self) -> int:
        return sum(self.counts.values())

    def compute(self) -> int:
        """Ops that do arithmetic (bookkeeping such as views and copies excluded)."""
        return sum(n for op, n in self.counts.items() if op not in BOOKKEEPING_OPS)

    def of(self, names) -> int:
        return sum(self.counts.get(op, 0) for op in names)

    def matrix_products(self) -> int:
        return self.of(MATRIX_PRODUCT_OPS)

    def convolutions(self) -> int:
        return self.of(CONVOLUTION_OPS)

    def ffts(self) -> int:
        return self.of(FFT_OPS)

    def to_dict(self) -> dict:
        return {"ops": dict(self.counts), "largest_output": self.largest_output}

    @classmethod
    def from_dict(cls, data: dict) -> "OpCounts":
        data = data if isinstance(data, dict) else {}
        ops = data.get("ops") if isinstance(data.get("ops"), dict) else {}
        counts = Counter()
        for op, n in ops.items():
            if isinstance(op, str) and isinstance(n, int) and n >= 0:
                counts[op] = n
        largest = data.get("largest_output")
        return cls(counts, largest if isinstance(largest, int) and largest >= 0 else 0)

    def summary(self, top=6) -> str:
        common = ", ".join(f"{op} x{n}" for op, n in self.counts.most_common(top))
        return f"{self.total()} ops ({common})"


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.counts = Counter()
        self.largest_output = 0
        self.paused = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if not self.paused:
            name = func._schema.name.split("::")[-1]
            self.counts[name] += 1
            if name not in BOOKKEEPING_OPS:  # views and fills can be big without costing anything
                for value in (result if isinstance(result, (tuple, list)) else (result,)):
                    if isinstance(value, torch.Tensor):
                        self.largest_output = max(self.largest_output, value.numel())
        return result

    def uncounted(self, fn):
        def wrapper(*args, **kwargs):
            self.paused += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self.paused -= 1
        return wrapper


def _namespaces_of(fn, extra=None) -> list:
    """The global namespaces `fn` looks names up in: its own, and those of whatever it wraps
    (a decorator such as torch.no_grad, functools.partial, a method, a callable object)."""
    import functools
    import inspect
    found, seen, todo = [], set(), [fn]
    while todo:
        item = todo.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        namespace = getattr(item, "__globals__", None)
        if isinstance(namespace, dict) and not any(namespace is n for n in found):
            found.append(namespace)
        if isinstance(item, functools.partial):
            todo.append(item.func)
        todo += [getattr(item, "__wrapped__", None), getattr(item, "__func__", None)]
        if not inspect.isroutine(item) and not isinstance(item, (type, functools.partial)):
            todo.append(getattr(type(item), "__call__", None))  # noqa: B004 - fetches the method to trace
    if isinstance(extra, dict) and not any(extra is n for n in found):
        found.append(extra)
    return found


def count_ops_locally(fn, *args, exclude_calls_to=(), namespace=None, **kwargs):
    """Call `fn` and return (result, OpCounts).

    Ops run inside the functions named in `exclude_calls_to` (a helper the student calls, looked
    up in the globals of `fn` and of what it wraps, and in `namespace`: the notebook's) are not
    counted, so each check judges one function only.
    """
    mode = _Counter()
    saved = []
    for names in _namespaces_of(fn, namespace):
        for name in exclude_calls_to:
            if callable(names.get(name)):
                saved.append((names, name, names[name]))
                names[name] = mode.uncounted(names[name])
    try:
        with mode:
            result = fn(*args, **kwargs)
    finally:
        for names, name, helper in reversed(saved):
            names[name] = helper
    return result, OpCounts(mode.counts, mode.largest_output)


def traced_call(fn, *args, exclude_calls_to=(), **kwargs):
    """Call `fn` while counting its ops: locally, or inside the sandbox for a remote function."""
    remote = getattr(fn, "traced_call", None)
    if remote is not None:
        return remote(*args, exclude_calls_to=exclude_calls_to, **kwargs)
    return count_ops_locally(fn, *args, exclude_calls_to=exclude_calls_to, **kwargs)


def grad_locally(fn, *args, wrt=(0,), upstream=None, **kwargs):
    """Call `fn` with gradients enabled on the arguments at positions `wrt`.

    Backpropagates sum(result * upstream) (upstream defaults to ones) and returns
    (result, [gradient or None for each position in wrt]). Numbers in `wrt` positions become
    0-d tensors so that a learnable scalar (like a ridge lambda) can receive a gradient.
    """
    args = list(args)
    leaves = []
    for i in wrt:
        value = args[i]
        leaf = (value.detach().clone() if isinstance(value, torch.Tensor)
                else torch.tensor(float(value), dtype=torch.float64))
        leaf.requires_grad_(True)
        args[i] = leaf
        leaves.append(leaf)
    with torch.enable_grad():
        result = fn(*args, **kwargs)
        if not isinstance(result, torch.Tensor) or not result.requires_grad:
            return (result.detach() if isinstance(result, torch.Tensor) else result), [None] * len(leaves)
        weight = torch.ones_like(result) if upstream is None else upstream.to(result.dtype).to(result.device)
        grads = torch.autograd.grad((result * weight).sum(), leaves, allow_unused=True)
    return result.detach(), [None if g is None else g.detach() for g in grads]


def grad_call(fn, *args, wrt=(0,), upstream=None, **kwargs):
    """Gradients of a graded function, computed where the function runs (see grad_locally)."""
    remote = getattr(fn, "grad_call", None)
    if remote is not None:
        return remote(*args, wrt=wrt, upstream=upstream, **kwargs)
    return grad_locally(fn, *args, wrt=wrt, upstream=upstream, **kwargs)


def time_locally(fn, *args, warmup=2, repeats=5, **kwargs):
    """Milliseconds per call, synchronising CUDA around each call when inputs live on a GPU."""
    import time
    cuda = torch.cuda.is_available() and any(isinstance(a, torch.Tensor) and a.is_cuda for a in args)
    for _ in range(warmup):
        fn(*args, **kwargs)
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*args, **kwargs)
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def timed_call(fn, *args, warmup=2, repeats=5, **kwargs):
    """Time a graded function where it runs; returns a list of milliseconds."""
    remote = getattr(fn, "timed_call", None)
    if remote is not None:
        return remote(*args, warmup=warmup, repeats=repeats, **kwargs)
    return time_locally(fn, *args, warmup=warmup, repeats=repeats, **kwargs)


class gpu_exclusive:  # noqa: N801 - used as a context manager
    """Hold the GPU alone while timing, so parallel submissions do not skew each other.

    The course grader sets SEQMOD_GPU_LOCK (a lock file shared by its parallel judges) when a GPU
    is present; elsewhere this does nothing. Checks that call a student's own timer use it too.
    """

    def __enter__(self):
        import os
        path = os.environ.get("SEQMOD_GPU_LOCK")
        self._file = None
        if path:
            import fcntl
            self._file = open(path, "a")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            import fcntl
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
