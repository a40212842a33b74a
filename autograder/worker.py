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

CELL_TIMEOUT_NOTE = "cell errors are recorded and execution goes on, as in otter"


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
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell

    nb = nbformat.read(path, as_version=4)
    shell = InteractiveShell.instance(colors="nocolor")  # tracebacks reach TAs as plain text
    shell.user_ns["__name__"] = "__main__"
    errors = []
    code_cells = [c for c in nb.cells if c.get("cell_type") == "code"]
    for index, cell in enumerate(code_cells):
        source = cell.get("source", "")
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


def serve(shell, requests, responses):
    while True:
        try:
            message = wire.read_message(requests)
        except EOFError:
            return
        op = message.get("op")
        nonce = message.get("nonce")
        try:
            reply = handle(shell, op, message)
        except Exception as error:  # noqa: BLE001 - any failure is reported, never fatal
            reply = {"status": "raised", "error": f"{type(error).__name__}: {error}"[:2000],
                     "traceback": _short_traceback(error)[-4000:]}
        reply["nonce"] = nonce
        tag = str(nonce or "")
        try:
            wire.write_message(responses, reply, tag)
        except (wire.WireError, TypeError, ValueError) as error:
            wire.write_message(responses, {"nonce": nonce, "status": "raised",
                                           "error": f"the result cannot be checked: {error}"}, tag)
        if op == "bye":
            return


def handle(shell, op, message):
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
    from autograder.checks.workloads import build as build_workload
    args = wire.decode(message.get("args", []), _device_map, workloads=build_workload)
    kwargs = wire.decode(message.get("kwargs", {"__dict__": {}}), _device_map, workloads=build_workload)
    if op == "call":
        result = fn(*args, **kwargs)
        return {"status": "ok", "value": _encode_result(result)}
    if op == "traced":
        from autograder.checks.trace import count_ops_locally
        exclude = [str(n) for n in message.get("exclude", [])]
        result, counts = count_ops_locally(fn, *args, exclude_calls_to=exclude, namespace=ns, **kwargs)
        return {"status": "ok", "value": _encode_result(result), "counts": counts.to_dict()}
    if op == "time":
        from autograder.checks.trace import time_locally
        times = time_locally(fn, *args, warmup=int(message.get("warmup", 2)),
                             repeats=int(message.get("repeats", 5)), **kwargs)
        return {"status": "ok", "times": times}
    if op == "grad":
        from autograder.checks.trace import grad_locally
        upstream = wire.decode(message.get("upstream"), _device_map)
        wrt = [int(i) for i in message.get("wrt", [0])]
        result, grads = grad_locally(fn, *args, wrt=wrt, upstream=upstream, **kwargs)
        return {"status": "ok", "value": _encode_result(result), "grads": wire.encode(grads)}
    return {"status": "raised", "error": f"unknown request {op!r}"}


def _encode_result(result):
    try:
        return wire.encode(result)
    except wire.WireError as error:
        raise TypeError(f"returned a {type(result).__name__}, which cannot be checked ({error})") from error


def main():
    notebook = sys.argv[1]
    requests = os.fdopen(int(os.environ.pop("SEQMOD_REQUEST_FD")), "rb", buffering=0)
    responses = os.fdopen(int(os.environ.pop("SEQMOD_RESPONSE_FD")), "wb", buffering=0)
    started = time.time()
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
    wire.write_message(responses, {"event": "ready", "cell_errors": errors, "cells": n_cells,
                                   "seconds": round(time.time() - started, 2)})
    serve(shell, requests, responses)


if __name__ == "__main__":
    main()
