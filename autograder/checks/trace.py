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
    """How many times each aten op ran (overload names dropped)."""

    counts: Counter = field(default_factory=Counter)

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
        return dict(self.counts)

    @classmethod
    def from_dict(cls, data: dict) -> "OpCounts":
        counts = Counter()
        for op, n in (data or {}).items():
            if isinstance(op, str) and isinstance(n, int) and n >= 0:
                counts[op] = n
        return cls(counts)

    def summary(self, top=6) -> str:
        common = ", ".join(f"{op} x{n}" for op, n in self.counts.most_common(top))
        return f"{self.total()} ops ({common})"


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.counts = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func._schema.name.split("::")[-1]] += 1
        return func(*args, **(kwargs or {}))


def count_ops_locally(fn, *args, **kwargs):
    """Call `fn` and return (result, OpCounts)."""
    mode = _Counter()
    with mode:
        result = fn(*args, **kwargs)
    return result, OpCounts(mode.counts)


def traced_call(fn, *args, **kwargs):
    """Call `fn` while counting its ops: locally, or inside the sandbox for a remote function."""
    remote = getattr(fn, "traced_call", None)
    if remote is not None:
        return remote(*args, **kwargs)
    return count_ops_locally(fn, *args, **kwargs)
