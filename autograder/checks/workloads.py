"""Known functions that a check can hand to a student's function (e.g. a timer) as an argument.

Functions cannot cross into the grader's sandbox, so a `Workload` travels as a name plus
parameters and is rebuilt on the other side from `BUILDERS`. Locally it is simply callable.
"""
import torch


def _matmul(size=1024, device="cuda", dtype="float32"):
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen, dtype=getattr(torch, dtype)).to(device)
    b = torch.randn(size, size, generator=gen, dtype=getattr(torch, dtype)).to(device)
    return lambda: a @ b


def _gpu_sleep(cycles=10_000_000):
    """A kernel that keeps the GPU busy for a known number of cycles and returns at once on the host."""
    return lambda: torch.cuda._sleep(int(cycles))


def _cpu_sleep(ms=20.0):
    import time
    return lambda: time.sleep(float(ms) / 1e3)


BUILDERS = {"matmul": _matmul, "gpu_sleep": _gpu_sleep, "cpu_sleep": _cpu_sleep}


class Workload:
    """A workload named in BUILDERS, with its parameters: built on its first call, it travels to the
    grader's worker as its name and parameters."""

    def __init__(self, name, **params):
        if name not in BUILDERS:
            raise ValueError(f"unknown workload {name!r}")
        self.__workload__ = name
        self.params = params
        self._fn = None

    def __call__(self, *args, **kwargs):
        if self._fn is None:
            self._fn = build(self.__workload__, self.params)
        return self._fn(*args, **kwargs)


class Clock(Workload):
    """A call that lasts `ms`, where the length is known only to the grader: in the sandbox each
    call waits for the grader's next tick (sent every `ms`), and nothing it carries says how long
    that is. Called locally (the otter path), it sleeps."""

    def __init__(self, ms):
        self.__workload__, self.params, self.interval_ms = "clock", {}, float(ms)
        self._fn = _cpu_sleep(ms)

    def __repr__(self):
        return f"Workload({self.__workload__!r}, {self.params})"


def build(name, params):
    """The callable of workload `name` with `params`; ValueError for an unknown name."""
    if name not in BUILDERS:
        raise ValueError(f"unknown workload {name!r}")
    return BUILDERS[name](**params)
