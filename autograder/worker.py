"""Runs inside the sandbox: executes a submission, then answers the grader's calls.

The grader (a clean process) sends requests over a pipe: describe a name, call a function on
inputs, call it while counting ops, or time it. Only plain data comes back (see `wire`).
This file must not import anything private: it is copied into the sandbox on its own.
"""
import os
import sys
import time
import traceback

import wire  # staged next to this file inside the sandbox


def _device_map(device: str):
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise wire.WireError("this input was meant for CUDA, but no GPU is visible")
    return device


def _short_traceback(error: BaseException, limit=6) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    student = [f for f in frames if not f.filename.endswith(("worker.py", "wire.py"))]
    lines = traceback.format_list(student[-limit:])
    return "".join(lines) + f"{type(error).__name__}: {error}"


def execute_notebook(path: str):
    """Run every code cell of the notebook at `path` in a fresh IPython shell, as otter does; returns (shell,
    cell errors, number of code cells)."""
    import json

    from IPython.core.interactiveshell import InteractiveShell

    # The judge hands over the minimal notebook (notebook_shape.py): plain JSON, no schema to check.
    with open(path, encoding="utf-8") as handle:
        cells = json.load(handle).get("cells", [])
    shell = InteractiveShell.instance(colors="nocolor")  # tracebacks reach TAs as plain text
    shell.user_ns["__name__"] = "__main__"
    errors = []
    code_cells = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    for index, cell in enumerate(code_cells):
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str) or not source.strip():
            continue
        result = shell.run_cell(source, store_history=False, silent=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            if isinstance(error, SystemExit):
                errors.append({"cell": index, "error": f"SystemExit({error.code}) ignored"})
                continue
            errors.append({"cell": index, "error": f"{type(error).__name__}: {error}"[:500]})
    return shell, errors, len(code_cells)


# What the measurements rely on, fingerprinted before the notebook runs and checked before and
# after every measured call: the counting and timing code, this worker's handlers, the wire
# encoder, and the torch entry points they use. Paths are (module, dotted attribute).
MEASURED = {
    "autograder.checks.trace": ["count_ops_locally", "time_locally", "grad_locally", "_Counter",
                                "_Counter.__torch_dispatch__", "_Counter.__init__", "_Counter.depends",
                                "_Counter.produced", "_ExcludedHelper.__call__", "_ExcludedHelper.verify",
                                "_bypassed", "_disagreement", "_tensors", "_storage", "_same_values",
                                "_namespaces_of", "_normalize_exclusions", "_Profile", "OpCounts", "_product_work",
                                "OpCounts.to_dict", "OpCounts.compute", "BOOKKEEPING_OPS", "IMPORT_OPS",
                                "_QUIET_OPS", "_KINDS", "MATRIX_PRODUCT_OPS", "CONVOLUTION_OPS",
                                "FFT_OPS", "AGREEMENT_MARGIN", "IMPORT_LIMIT", "_ExcludedHelper"],
    "autograder.checks.workloads": ["build", "BUILDERS"],
    "torch.utils._python_dispatch": ["TorchDispatchMode", "TorchDispatchMode.__enter__",
                                     "TorchDispatchMode.__exit__", "_push_mode", "_pop_mode"],
    "torch._C": ["_push_on_torch_dispatch_stack", "_pop_torch_dispatch_stack",
                 "_len_torch_dispatch_stack", "_get_dispatch_stack_at"],
    "torch.autograd.profiler": ["profile", "profile.__enter__", "profile.__exit__", "profile._start_trace",
                                "profile._prepare_trace"],
    "torch._C._autograd": ["_enable_profiler", "_disable_profiler", "_prepare_profiler",
                           "_disable_profiler_legacy", "_enable_profiler_legacy"],
    "torch.autograd": ["_enable_profiler", "_disable_profiler", "_prepare_profiler"],
    "torch.cuda": ["synchronize", "Event"],
    "time": ["perf_counter", "monotonic", "sleep"],
    "wire": ["encode", "_encode_array", "frame", "write_message", "read_message", "decode", "read_exactly"],
    "json": ["dumps", "JSONEncoder", "JSONEncoder.encode", "JSONEncoder.iterencode", "_default_encoder",
             "encoder.encode_basestring_ascii", "encoder.c_make_encoder"],
    "base64": ["b64encode"],
    "struct": ["pack"],
}
WORKER_FUNCTIONS = ["serve", "handle", "measured", "_encode_result", "_device_map", "Fingerprints"]


def _lookup(root, path):
    value = root
    for part in path.split("."):
        value = getattr(value, part, None) if not isinstance(value, dict) else value.get(part)
    return value


def _print(value, depth=0):
    """What identifies an object: itself, and for a function its code, defaults and closure; for
    a container, what it holds."""
    if isinstance(value, (set, frozenset)):
        return (id(value), frozenset(value))
    if isinstance(value, (list, tuple)) and depth < 3:
        return (id(value), tuple(_print(v, depth + 1) for v in value))
    if isinstance(value, dict) and depth < 3:
        return (id(value), tuple((k, _print(v, depth + 1)) for k, v in value.items()))
    if isinstance(value, type):
        return (id(value), tuple(sorted((k, id(v)) for k, v in vars(value).items())))
    code = getattr(value, "__code__", None)
    if code is None:
        return (id(value),)
    cells = tuple(id(c.cell_contents) if c is not None and _has_contents(c) else 0
                  for c in (getattr(value, "__closure__", None) or ()))
    return (id(value), id(code), id(getattr(value, "__defaults__", None)),
            id(getattr(value, "__kwdefaults__", None)), id(getattr(value, "__globals__", None)), cells)


def _has_contents(cell):
    try:
        _ = cell.cell_contents
        return True
    except ValueError:
        return False


class Fingerprints:
    """Taken before the notebook runs; `changed()` names what differs now (or says nothing)."""

    def __init__(self, worker_globals):
        self.modules = {name: sys.modules.get(name) for name in MEASURED}
        self.worker_globals = worker_globals
        self.kept = []  # hold every fingerprinted object, so that no id is reused
        self.prints = {}
        for name, paths in MEASURED.items():
            for path in paths:
                self._take(f"{name}.{path}", _lookup(self.modules[name], path))
        for path in WORKER_FUNCTIONS:
            self._take(f"worker.{path}", worker_globals.get(path))

    def _take(self, label, value):
        self.kept.append(value)
        self.prints[label] = _print(value)

    def changed(self) -> str:
        """What was changed since the fingerprints were taken (empty when nothing was)."""
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                return f"the module {name} was replaced in sys.modules"
        for label, fingerprint in self.prints.items():
            if label.startswith("worker."):
                value = self.worker_globals.get(label[len("worker."):])
            else:
                name = max((n for n in self.modules if label.startswith(n + ".")), key=len)
                value = _lookup(self.modules[name], label[len(name) + 1:])
            if _print(value) != fingerprint:
                return f"{label} was changed by the notebook"
        return ""


def serve(shell, requests, responses, trusted):
    """Answer the grader's requests until it says bye or the pipe closes."""
    while True:
        try:
            message = trusted.read_message(requests)
        except EOFError:
            return
        op = message.get("op")
        nonce = message.get("nonce")
        if op == "tick":  # a clock tick that no workload waited for
            continue
        try:
            reply = trusted.handle(shell, op, message, trusted)
        except Exception as error:  # noqa: BLE001 - any failure is reported, never fatal
            reply = {"status": "raised", "error": f"{type(error).__name__}: {error}"[:2000],
                     "traceback": _short_traceback(error)[-4000:]}
        reply["nonce"] = nonce
        tag = str(nonce or "")
        try:
            trusted.write_message(responses, reply, tag)
        except (wire.WireError, TypeError, ValueError) as error:
            trusted.write_message(responses, {"nonce": nonce, "status": "raised",
                                           "error": f"the result cannot be checked: {error}"}, tag)
        if op == "bye":
            return


def measured(trusted, measure):
    """Run a measurement between two checks of the fingerprints; a change voids it."""
    problem = trusted.fingerprints.changed()
    outcome = measure()
    return outcome, problem or trusted.fingerprints.changed()


def handle(shell, op, message, trusted):
    """One request: describe a name, call, trace, time or differentiate a function of the notebook."""
    ns = shell.user_ns
    if op == "bye":
        return {"status": "ok"}
    if op == "describe":
        out = {}
        for name in message["names"]:
            if name not in ns:
                out[name] = {"kind": "missing"}
            elif callable(ns[name]):
                out[name] = {"kind": "callable"}
            else:
                try:
                    out[name] = {"kind": "value", "value": wire.encode(ns[name])}
                except wire.WireError as error:
                    out[name] = {"kind": "unsendable", "type": type(ns[name]).__name__,
                                 "error": str(error)}
        return {"status": "ok", "names": out}
    fn = ns.get(message["name"])
    if not callable(fn):
        return {"status": "raised", "error": f"NameError: {message['name']} is not defined"}
    build_workload = trusted.workloads
    args = wire.decode(message.get("args", []), _device_map, workloads=build_workload)
    kwargs = wire.decode(message.get("kwargs", {"__dict__": {}}), _device_map, workloads=build_workload)
    if op == "call":
        result = fn(*args, **kwargs)
        return {"status": "ok", "value": _encode_result(result)}
    if op == "traced":
        exclude = message.get("exclude", [])
        exclude = ({str(k): v for k, v in exclude.items()} if isinstance(exclude, dict)
                   else [str(n) for n in exclude])
        (result, counts), problem = measured(trusted, lambda: trusted.count_ops(
            fn, *args, exclude_calls_to=exclude, namespace=ns, **kwargs))
        counts.voided = counts.voided or problem
        return {"status": "ok", "value": _encode_result(result), "counts": counts.to_dict()}
    if op == "time":
        times, problem = measured(trusted, lambda: trusted.time(
            fn, *args, warmup=int(message.get("warmup", 2)), repeats=int(message.get("repeats", 5)), **kwargs))
        return {"status": "ok", "times": times, "voided": problem}
    if op == "grad":
        upstream = wire.decode(message.get("upstream"), _device_map)
        wrt = [int(i) for i in message.get("wrt", [0])]
        result, grads = trusted.grad(fn, *args, wrt=wrt, upstream=upstream, **kwargs)
        return {"status": "ok", "value": _encode_result(result), "grads": wire.encode(grads)}
    return {"status": "raised", "error": f"unknown request {op!r}"}


def _encode_result(result):
    try:
        return wire.encode(result)
    except wire.WireError as error:
        raise TypeError(f"returned a {type(result).__name__}, which cannot be checked ({error})") from error


def _writer():
    """wire.write_message built from parts captured now: patching `wire` later changes nothing here."""
    import json
    import struct
    dumps, pack, tag_bytes = json.dumps, struct.pack, wire.TAG_BYTES

    def write_message(stream, message, tag=""):
        payload = dumps(message).encode()
        stream.write(pack(">Q", len(payload)) + tag.encode("ascii")[:tag_bytes].ljust(tag_bytes) + payload)
        stream.flush()
    return write_message


class Trusted:
    """The grader's own functions, captured before any notebook code runs: the notebook can
    rebind the names in their modules, but not what is held here (and a change is detected)."""

    def __init__(self, requests):
        from autograder.checks import trace, workloads
        self.count_ops, self.time, self.grad = trace.count_ops_locally, trace.time_locally, trace.grad_locally
        self.handle, self.serve = handle, serve
        self.read_message, self.write_message = wire.read_message, _writer()
        read_message = wire.read_message

        def wait_for_tick():
            """The clock workload: each call returns when the grader's next tick arrives, so how
            long a call takes is decided by the grader and cannot be read from its parameters."""
            while read_message(requests).get("op") != "tick":
                pass

        def build_workload(name, params):
            return wait_for_tick if name == "clock" else workloads.build(name, params)

        self.workloads = build_workload
        self.fingerprints = Fingerprints(globals())


def main():
    """Entry point inside the sandbox: run the notebook, report ready, then serve requests."""
    notebook = sys.argv[1]
    requests = os.fdopen(int(os.environ.pop("SEQMOD_REQUEST_FD")), "rb", buffering=0)
    responses = os.fdopen(int(os.environ.pop("SEQMOD_RESPONSE_FD")), "wb", buffering=0)
    started = time.time()
    trusted = Trusted(requests)
    # Before any notebook code runs: from here on, whatever goes wrong is the notebook's doing.
    wire.write_message(responses, {"event": "started"})
    try:
        shell, errors, n_cells = execute_notebook(notebook)
    except Exception as error:  # noqa: BLE001 - any failure is reported to the grader, never fatal
        wire.write_message(responses, {"event": "failed",
                                       "error": f"{type(error).__name__}: {error}"[:1000]})
        return
    sys.stdout.flush()
    sys.stderr.flush()
    trusted.write_message(responses, {"event": "ready", "cell_errors": errors, "cells": n_cells,
                                   "seconds": round(time.time() - started, 2)})
    trusted.serve(shell, requests, responses, trusted)


if __name__ == "__main__":
    main()
