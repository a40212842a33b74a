"""Stand-ins for a submission's functions and values, living in the grader's clean process.

Calling a `RemoteFunction` sends the inputs into the sandbox and brings back only the output.
Checks treat it like the student's function; nothing the student's code does can reach here.
"""
import threading
import time

from . import wire
from .checks import trace
from .checks.core import StudentCodeError
from .checks.trace import OpCounts, gpu_exclusive
from .checks.workloads import Clock


class _Ticks:
    """While a call that was handed a `Clock` runs, send the sandbox a tick every `ms`."""

    def __init__(self, session, ms):
        self.session, self.ms = session, ms
        self.done = threading.Event()

    def _run(self):
        box, started, n = self.session.box, time.monotonic(), 0
        tick = wire.frame({"op": "tick"})
        while True:
            n += 1
            if self.done.wait(max(0.0, started + n * self.ms / 1e3 - time.monotonic())):
                return
            try:
                box._send(tick, time.monotonic() + 5.0)
            except BaseException:  # noqa: BLE001 - the reply side reports what went wrong
                return

    def __enter__(self):
        if self.ms is not None:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.ms is not None:
            self.done.set()
            self.thread.join()

def _keep_device(device: str) -> str:
    """Results come back on the device they were computed on (a GPU result stays on the GPU)."""
    import torch
    return device if device.startswith("cuda") and torch.cuda.is_available() else "cpu"


def _decode(value):
    return wire.decode(value, _keep_device)


class RemoteFunction:
    """A graded function that lives in the sandbox: calling it sends the inputs over the pipe and returns the
    decoded result."""
    def __init__(self, session, name):
        self._session, self.__name__ = session, name

    def _send(self, op, args, kwargs, **extra):
        reply = self._session.request({"op": op, "name": self.__name__, "args": wire.encode(list(args)),
                                       "kwargs": wire.encode(dict(kwargs)), **extra})
        if reply.get("status") != "ok":
            raise StudentCodeError(str(reply.get("error", "unknown error"))[:1500])
        return reply

    def __call__(self, *args, **kwargs):
        clocks = [a for a in (*args, *kwargs.values()) if isinstance(a, Clock)]
        with _Ticks(self._session, clocks[0].interval_ms if clocks else None):
            return _decode(self._send("call", args, kwargs).get("value"))

    def traced_call(self, *args, exclude_calls_to=(), **kwargs):
        """Call it in the sandbox while counting its ops; returns (result, OpCounts)."""
        exclude = ({str(k): v for k, v in exclude_calls_to.items()} if isinstance(exclude_calls_to, dict)
                   else [str(n) for n in exclude_calls_to])
        reply = self._send("traced", args, kwargs, exclude=exclude)
        return _decode(reply.get("value")), OpCounts.from_dict(reply.get("counts"))

    def grad_call(self, *args, wrt=(0,), upstream=None, **kwargs):
        """Call it in the sandbox with gradients on the arguments at `wrt`; returns (result, gradients)."""
        reply = self._send("grad", args, kwargs, wrt=[int(i) for i in wrt], upstream=wire.encode(upstream))
        grads = _decode(reply.get("grads"))
        if not isinstance(grads, list) or len(grads) != len(tuple(wrt)):
            raise StudentCodeError("the gradient computation returned something unexpected")
        return _decode(reply.get("value")), grads

    def timed_call(self, *args, warmup=2, repeats=5, **kwargs):
        """Time it in the sandbox (holding the GPU alone); returns milliseconds per call."""
        with gpu_exclusive():
            reply = self._send("time", args, kwargs, warmup=warmup, repeats=repeats)
        voided = reply.get("voided")
        if isinstance(voided, str) and voided:
            trace.judge_measurement(OpCounts(voided=voided[:500]), self.__name__)
        return [float(t) for t in reply.get("times", [])]

    def __repr__(self):
        return f"<submitted function {self.__name__}>"


def resolve(session, names) -> dict:
    """Look names up in the submission: functions become proxies, data is copied over."""
    names = [n for n in names if n != "env"]
    if not names:
        return {}
    reply = session.request({"op": "describe", "names": names})
    resolved = {}
    for name, info in (reply.get("names") or {}).items():
        if name not in names:
            continue
        kind = info.get("kind") if isinstance(info, dict) else None
        if kind == "callable":
            resolved[name] = RemoteFunction(session, name)
        elif kind == "value":
            try:
                resolved[name] = wire.decode(info.get("value"))
            except (wire.WireError, ValueError, TypeError, KeyError):
                resolved[name] = None
        else:
            resolved[name] = None
    return resolved
