"""Count the tensor operations a function dispatches.

Counting operations, not seconds, makes structure checks independent of machine speed:
a Python loop over T time steps shows up as ~T dispatched ops, a doubling construction as
~log2(T) matrix products.
"""
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .core import CheckFailure

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


IMPORT_OPS = {"lift_fresh", "lift_fresh_copy"}  # a tensor made from Python or numpy data enters torch
# Ops the profiler may record with no dispatch-mode call under them in honest code: no-op
# conversions, and the bookkeeping a kernel does for itself.
_QUIET_OPS = BOOKKEEPING_OPS - IMPORT_OPS - {"item", "_local_scalar_dense"} | {
    "to", "detach_", "_nnpack_available", "is_same_size", "result_type", "size", "stride", "numel",
    "is_floating_point", "is_complex", "_shape_as_tensor", "empty_strided", "record_stream"}
IMPORT_LIMIT = 16   # floating elements a checked call may bring in from outside torch (constants)
AGREEMENT_MARGIN = 2  # ops the two channels may disagree by


@dataclass
class OpCounts:
    """How many times each aten op ran (overload names dropped), and the number of elements of
    the largest tensor an arithmetic op produced (an n x n intermediate shows up there even when
    the op counts look right).

    The evidence that the count can be trusted travels with it: `voided` (why the measurement
    cannot be trusted: the two counting channels disagree, ops ran with the dispatch mode off,
    grader code changed), `outside` (work done outside torch: imported numpy or Python data),
    `notes` (things a TA should look at that do not void the count, such as a helper whose
    exclusion was refused), and `depends` (the kinds of op the result depends on)."""

    counts: Counter = field(default_factory=Counter)
    largest_output: int = 0
    voided: str = ""
    outside: str = ""
    notes: list = field(default_factory=list)
    depends: frozenset = frozenset({"convolution", "fft"})
    product_work: int = 0  # multiply-adds done by matrix products: d^2 for M v, d^3 for M M


    def total(self) -> int:
        """Every op counted, bookkeeping included."""
        return sum(self.counts.values())

    def compute(self) -> int:
        """Ops that do arithmetic (bookkeeping such as views and copies excluded)."""
        return sum(n for op, n in self.counts.items() if op not in BOOKKEEPING_OPS)

    def of(self, names) -> int:
        """How many of the counted ops are among `names`."""
        return sum(self.counts.get(op, 0) for op in names)

    def matrix_products(self) -> int:
        """Matrix products (mm, bmm, matmul's kernels, dot products)."""
        return self.of(MATRIX_PRODUCT_OPS)

    def convolutions(self) -> int:
        """Convolutions, when the result depends on one (a token convolution whose output is
        thrown away does not count)."""
        return self.of(CONVOLUTION_OPS) if "convolution" in self.depends else 0

    def ffts(self) -> int:
        """FFT ops, when the result depends on one."""
        return self.of(FFT_OPS) if "fft" in self.depends else 0

    def to_dict(self) -> dict:
        """The counts as plain JSON data (what a worker sends back)."""
        return {"ops": dict(self.counts), "largest_output": self.largest_output, "voided": self.voided,
                "outside": self.outside, "notes": list(self.notes), "depends": sorted(self.depends),
                "product_work": self.product_work}

    @classmethod
    def from_dict(cls, data: dict) -> "OpCounts":
        """Counts from `to_dict`'s data; malformed entries are dropped."""
        data = data if isinstance(data, dict) else {}
        ops = data.get("ops") if isinstance(data.get("ops"), dict) else {}
        counts = Counter()
        for op, n in ops.items():
            if isinstance(op, str) and isinstance(n, int) and n >= 0:
                counts[op] = n
        largest = data.get("largest_output")

        def text(key):
            value = data.get(key)
            return value[:500] if isinstance(value, str) else ""

        notes = data.get("notes") if isinstance(data.get("notes"), list) else []
        depends = data.get("depends") if isinstance(data.get("depends"), list) else []
        work = data.get("product_work")
        return cls(counts, largest if isinstance(largest, int) and largest >= 0 else 0, text("voided"),
                   text("outside"), [n[:500] for n in notes[:10] if isinstance(n, str)],
                   frozenset(d for d in depends if isinstance(d, str)),
                   work if isinstance(work, int) and work >= 0 else 0)

    def summary(self, top=6) -> str:
        """The total and the `top` most frequent ops, for feedback."""
        common = ", ".join(f"{op} x{n}" for op, n in self.counts.most_common(top))
        return f"{self.total()} ops ({common})"


def _tensors(value, depth=0):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)) and depth < 3:
        for item in value:
            yield from _tensors(item, depth + 1)
    elif isinstance(value, dict) and depth < 3:
        for item in value.values():
            yield from _tensors(item, depth + 1)


def _storage(tensor):
    try:
        return tensor.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001 - tensors without storage (sparse, meta) carry no provenance
        return None


_KINDS = [(CONVOLUTION_OPS, "convolution"), (FFT_OPS, "fft"), (MATRIX_PRODUCT_OPS, "matrix_product")]
_BIASED_PRODUCTS = {"addmm", "baddbmm", "addbmm", "addmv"}  # the bias comes first, the factors after


def _product_work(name, args, result) -> int:
    """Multiply-adds of one matrix product: each output element sums over the shared dimension."""
    factors = [a for a in args if isinstance(a, torch.Tensor)][1 if name in _BIASED_PRODUCTS else 0:]
    out = next(_tensors(result), None)
    if not factors or out is None:
        return 0
    if name in ("dot", "vdot"):
        return factors[0].numel()
    shared = factors[0].shape[-1] if factors[0].dim() else 1
    if name == "addbmm":  # the batch is summed into one output matrix
        shared *= factors[0].shape[0]
    return out.numel() * shared


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.counts = Counter()
        self.largest_output = 0
        self.paused = 0
        self.aside = Counter()  # what an excluded helper ran, kept apart until its call is checked
        self.dispatched = 0   # every op the mode saw, counted or not (checked against the profiler)
        self.imported = 0     # floating elements brought in from Python or numpy data
        self.product_work = 0  # multiply-adds of the matrix products counted
        self.kinds = {}       # storage -> the kinds of op (convolution, fft) its values depend on

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        self.dispatched += 1
        name = func._schema.name.split("::")[-1]
        if name in IMPORT_OPS:
            if not self.paused:
                for value in _tensors(args):
                    if value.is_floating_point() or value.is_complex():
                        self.imported += value.numel()
            return result
        kinds = frozenset()
        for value in _tensors((args, kwargs or {})):
            kinds = kinds | self.kinds.get(_storage(value), frozenset())
        for names, kind in _KINDS:
            if name in names:
                kinds = kinds | {kind}
        for value in _tensors(result):
            self.kinds[_storage(value)] = kinds
        if self.paused:
            self.aside[name] += 1
        else:
            self.counts[name] += 1
            if name in MATRIX_PRODUCT_OPS:
                self.product_work += _product_work(name, args, result)
            if name not in BOOKKEEPING_OPS:  # views and fills can be big without costing anything
                for value in _tensors(result):
                    self.largest_output = max(self.largest_output, value.numel())
        return result

    def depends(self, result) -> frozenset:
        kinds = frozenset()
        for value in _tensors(result):
            kinds = kinds | self.kinds.get(_storage(value), frozenset())
        return kinds

    def produced(self, tensor) -> bool:
        return _storage(tensor) in self.kinds


class _ExcludedHelper:
    """A helper whose ops are left out of the checked function's count, as long as each call does
    the helper's own job: at most `arity` arguments, and, run again on its own afterwards, the
    same result for no fewer ops. Any other call counts in full."""

    def __init__(self, mode, name, fn, arity):
        self.mode, self.name, self.fn, self.arity = mode, name, fn, arity
        self.calls = []
        self.refused = []

    def __call__(self, *args, **kwargs):
        mode = self.mode
        if mode.paused or (self.arity is not None and len(args) + len(kwargs) > self.arity):
            if not mode.paused:
                self.refused.append(f"`{self.name}` was called with {len(args) + len(kwargs)} arguments "
                                    f"(its own job takes {self.arity}): its ops were counted")
            return self.fn(*args, **kwargs)
        outer_aside, mode.aside = mode.aside, Counter()
        mode.paused += 1
        try:
            result = self.fn(*args, **kwargs)
        finally:
            mode.paused -= 1
            inside, mode.aside = mode.aside, outer_aside
        if len(self.calls) < 4:
            self.calls.append((args, kwargs, result, inside))
        else:
            mode.counts.update(inside)  # only the first few calls are checked and excluded
        return result

    def verify(self, counts: Counter):
        """Run each excluded call again on its own; add back the ops of calls that did more."""
        for args, kwargs, result, inside in self.calls:
            try:
                with _Counter() as alone:
                    again = self.fn(*args, **kwargs)
                same = _same_values(result, again)
            except Exception:  # noqa: BLE001 - a call that fails alone is not the same call: its ops count
                same, alone = False, None
            used = sum(n for op, n in inside.items() if op not in BOOKKEEPING_OPS)
            own = -1 if alone is None else sum(n for op, n in alone.counts.items() if op not in BOOKKEEPING_OPS)
            if not same or used > own + AGREEMENT_MARGIN:
                counts.update(inside)
                self.refused.append(f"`{self.name}` did more inside the checked call than on its own "
                                    f"({used} ops against {own}{'' if same else ', another result'}): "
                                    "its ops were counted")


def _same_values(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and a.dtype == b.dtype and bool(torch.equal(a.detach().cpu(), b.detach().cpu())))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_values(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and (a == b) is True


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


def _bypassed(events) -> Counter:
    """Ops the profiler recorded that never reached the dispatch mode (it was switched off): call
    trees of the profiler's records, per thread, with no `PythonDispatchMode` record above or
    inside them; each such tree whose top op does arithmetic counts once."""
    rows = sorted((e.start_thread_id(), e.start_ns(), -e.duration_ns(), e.name()) for e in events)
    missed, stack, thread = Counter(), [], None
    # stack entries: [end, name, under the mode, mode reached inside, ops missed inside]

    def pop():
        end, name, under, reached, inside = stack.pop()
        if reached or under or name == "PythonDispatchMode":
            count = inside
            if reached and stack:
                stack[-1][3] = True
        else:
            short = name.split("::")[-1]
            count = Counter({short: 1}) if short not in _QUIET_OPS else inside
        if stack:
            stack[-1][4] += count
        else:
            missed.update(count)

    for tid, start, negative_duration, name in rows:
        if tid != thread:
            while stack:
                pop()
            thread = tid
        while stack and stack[-1][0] <= start:
            pop()
        under = bool(stack) and (stack[-1][2] or stack[-1][1] == "PythonDispatchMode")
        if name == "PythonDispatchMode":
            for entry in stack:
                entry[3] = True
        stack.append([start - negative_duration, name, under, False, Counter()])
    while stack:
        pop()
    return missed


_Profile = torch.autograd.profiler.profile


def _normalize_exclusions(exclude_calls_to) -> dict:
    if isinstance(exclude_calls_to, dict):
        return {str(k): (int(v) if isinstance(v, int) else None) for k, v in exclude_calls_to.items()}
    return {str(name): None for name in exclude_calls_to}


def count_ops_locally(fn, *args, exclude_calls_to=(), namespace=None, **kwargs):
    """Call `fn` and return (result, OpCounts).

    Ops run inside the functions named in `exclude_calls_to` (a list of names, or a dict of name
    to the number of arguments the helper's own job takes; looked up in the globals of `fn` and
    of what it wraps, and in `namespace`: the notebook's) are not counted, so each check judges
    one function only; see `_ExcludedHelper` for when an exclusion is refused.

    Two channels count: a Python dispatch mode, and the autograd profiler, which records the
    same ops in C++ below it. Ops the profiler saw that the mode did not (the mode switched off),
    a profiler that stops or sees fewer ops than the mode, or a fresh result that no counted op
    produced void the measurement (`OpCounts.voided`).
    """
    mode = _Counter()
    helpers, saved = [], []
    for name, arity in _normalize_exclusions(exclude_calls_to).items():
        for names in _namespaces_of(fn, namespace):
            if callable(names.get(name)):
                helper = _ExcludedHelper(mode, name, names[name], arity)
                helpers.append(helper)
                saved.append((names, name, names[name]))
                names[name] = helper
    problem = ""
    profile = _Profile(use_kineto=False)
    try:
        profile.__enter__()
    except Exception as error:  # noqa: BLE001 - e.g. a profiler left running by the notebook
        profile, problem = None, f"the profiler could not start ({type(error).__name__}: {error})"
    try:
        with mode:
            result = fn(*args, **kwargs)
    finally:
        for names, name, helper in reversed(saved):
            names[name] = helper
        if profile is not None:
            try:
                profile.__exit__(None, None, None)
            except Exception as error:  # noqa: BLE001 - student code may have broken the profiler; say so, keep the result
                profile, problem = None, f"the profiler was stopped during the call ({type(error).__name__})"
    notes = []
    for helper in helpers:
        helper.verify(mode.counts)
        notes += helper.refused
    counts = OpCounts(mode.counts, mode.largest_output, notes=notes, depends=mode.depends(result),
                      product_work=mode.product_work)
    if profile is not None and not problem:
        problem = _disagreement(profile.kineto_results.events(), mode)
    if not problem:
        inputs = {_storage(t) for t in _tensors((args, kwargs))}
        fresh = [t for t in _tensors(result) if (t.is_floating_point() or t.is_complex()) and t.numel() > 1
                 and _storage(t) not in inputs and not mode.produced(t)]
        if fresh and counts.compute() == 0 and mode.imported == 0:
            problem = "it returned freshly computed tensors, but no tensor operation was counted"
        elif fresh or mode.imported > IMPORT_LIMIT:
            counts.outside = (f"{max(mode.imported, sum(t.numel() for t in fresh))} values were computed "
                              "outside torch (numpy, Python lists or .tolist()/.numpy() conversions)")
    counts.voided = problem
    return result, counts


def _disagreement(events, mode) -> str:
    recorded = sum(1 for e in events if e.name() == "PythonDispatchMode")
    if recorded + AGREEMENT_MARGIN < mode.dispatched:
        return (f"the profiler recorded {recorded} dispatched ops but the dispatch mode saw "
                f"{mode.dispatched}: the profiler was switched off during the call")
    if recorded > mode.dispatched + AGREEMENT_MARGIN:
        return (f"the profiler recorded {recorded} dispatched ops but the dispatch mode counted only "
                f"{mode.dispatched}: ops were hidden from the count")
    missed = _bypassed(events)
    if sum(missed.values()) > AGREEMENT_MARGIN:
        common = ", ".join(f"{op} x{n}" for op, n in missed.most_common(4))
        return (f"{sum(missed.values())} ops ran with the dispatch mode switched off, seen only by the "
                f"profiler ({common})")
    return ""


def traced_call(fn, *args, exclude_calls_to=(), **kwargs):
    """Call `fn` while counting its ops: locally, or inside the sandbox for a remote function.
    A count that cannot be trusted raises `MeasurementVoided`; work outside torch fails the check."""
    result, counts = _count(fn, *args, exclude_calls_to=exclude_calls_to, **kwargs)
    judge_measurement(counts, getattr(fn, "__name__", "this function"))
    return result, counts


def _count(fn, *args, **kwargs):
    """(result, OpCounts) of one call, counted where `fn` runs: in the sandbox for a remote function."""
    remote = getattr(fn, "traced_call", None)
    return remote(*args, **kwargs) if remote is not None else count_ops_locally(fn, *args, **kwargs)


TRUST_MEASUREMENTS = False  # set by the judge for a submission a TA accepted after review
EVIDENCE = []  # what the measurements of the current test noted for the TA (read by the judge)


class MeasurementVoided(CheckFailure):
    """The structure or timing measurement could not be trusted; `reason` says why."""

    def __init__(self, reason, name="this function"):
        self.reason = reason
        super().__init__(f"the measurement of `{name}` could not be trusted, so this test scores 0 and "
                         f"your submission is on the TA's review list: {reason}.")


class OutsideTorch(CheckFailure):
    """Work done outside torch inside a structure-checked call: it cannot be counted."""

    def __init__(self, what, name="this function"):
        self.reason = what
        super().__init__(f"`{name}`: {what}; the hidden tests count torch operations only, so write this "
                         "with torch operations (a Python loop is fine, as long as the values it computes "
                         "are tensors: keep `s = p @ p` a 0-d tensor rather than `float(p @ p)`).")


def expect_countable(fn, *args, name, **kwargs):
    """Public feedback for a function whose structure the hidden tests count: fail now, saying why,
    when part of its work happens outside torch, where no count can see it (the hidden structure
    tests would score it 0). Returns what `fn` returned."""
    result, counts = _count(fn, *args, **kwargs)
    if counts.outside and not TRUST_MEASUREMENTS:
        raise OutsideTorch(counts.outside, name)
    return result


def judge_measurement(counts, name):
    """Raise for a voided measurement (unless a TA accepted it) or for work outside torch."""
    EVIDENCE.extend(f"`{name}`: {note}" for note in counts.notes)
    for names, kind in ((CONVOLUTION_OPS, "convolution"), (FFT_OPS, "fft")):
        if counts.of(names) and kind not in counts.depends:  # a token op, there only to be counted
            EVIDENCE.append(f"`{name}` ran a {kind} that its result does not depend on")
    if counts.voided and TRUST_MEASUREMENTS:
        EVIDENCE.append(f"`{name}` (trusted after review): {counts.voided}")
    if counts.voided and not TRUST_MEASUREMENTS:
        raise MeasurementVoided(counts.voided, name)
    if counts.outside and not TRUST_MEASUREMENTS:
        raise OutsideTorch(counts.outside, name)


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


def grows_like_log(counts_by_size: dict, per_round=64, slack=24):
    """Whether op counts measured at three or more sizes (each a constant factor apart) grow like
    log T, not like T or a power of T. Returns (ok, explanation).

    Between consecutive sizes a log T algorithm adds the same number of ops each time (one round
    per doubling); an algorithm with T^p rounds adds factor^p times more each time. So the last
    step may add at most 1.5 times what the first added plus `slack`, and at most `per_round` ops
    per doubling: every standard O(log T) coding (Hillis-Steele, Blelloch's up and down sweeps,
    rounds written with padding, cat or index assignment) passes; a loop over T, or over T/64
    chunks, does not."""
    import math
    sizes = sorted(counts_by_size)
    ops = [counts_by_size[s] for s in sizes]
    steps = [ops[i + 1] - ops[i] for i in range(len(ops) - 1)]
    doublings = [math.log2(sizes[i + 1] / sizes[i]) for i in range(len(sizes) - 1)]
    first, last = max(steps[0], 0), steps[-1]
    ok = last <= 1.5 * first + slack and all(s <= per_round * d for s, d in zip(steps, doublings))
    seen = ", ".join(f"{n} at T={t}" for t, n in zip(sizes, ops))
    return ok, (f"ops {seen}: from T={sizes[-2]} to T={sizes[-1]} it added {last}, against {first} from "
                f"T={sizes[0]} to T={sizes[1]} (about {per_round} per doubling of T at most, and no faster "
                "growth at larger T)")
