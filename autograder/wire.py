"""A small, safe message format between the grader and the sandboxed student process.

Only plain data crosses the boundary: None, bool, int, float, complex, str, lists, tuples,
sets, string-keyed dicts, and arrays (tensors travel as raw bytes plus dtype, shape and device).
Nothing is unpickled, so a value sent by student code can never run code in the grader.
"""
import base64
import json
import struct

import numpy as np

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
_ARRAY_DTYPES = {
    "float16", "float32", "float64", "complex64", "complex128",
    "int8", "int16", "int32", "int64", "uint8", "bool",
}


class WireError(ValueError):
    """A value that cannot cross the boundary, or a malformed message."""


def _torch():
    import torch
    return torch


def encode(value, _depth=0):
    """Plain JSON-able data for `value`; WireError for anything that may not cross the boundary."""
    if _depth > 20:
        raise WireError("value is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and type(value) in (int, float):
        if isinstance(value, float) and not np.isfinite(value):
            return {"__float__": repr(value)}
        return value
    if isinstance(value, complex):
        return {"__complex__": [value.real, value.imag]}
    if isinstance(value, (list, tuple)):
        items = [encode(v, _depth + 1) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [encode(v, _depth + 1) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise WireError("only dicts with string keys can be sent")
        return {"__dict__": {k: encode(v, _depth + 1) for k, v in value.items()}}
    if hasattr(value, "__workload__") and isinstance(getattr(value, "params", None), dict):
        return {"__workload__": str(value.__workload__), "params": encode(value.params, _depth + 1)}
    if isinstance(value, np.generic):
        return encode(value.item(), _depth)
    if isinstance(value, np.ndarray):
        return _encode_array(value, "numpy", "cpu")
    torch = _torch()
    if isinstance(value, torch.Tensor):
        tensor = torch.Tensor.detach(value)
        device = str(tensor.device)
        try:
            array = tensor.cpu().resolve_conj().resolve_neg().contiguous().numpy()
        except TypeError:  # a dtype numpy lacks, such as bfloat16
            raise WireError(f"tensors of dtype {tensor.dtype} are not supported") from None
        return _encode_array(array, "torch", device)
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value)}
    raise WireError(f"cannot send a value of type {type(value).__name__}")


def _encode_array(array, kind, device):
    dtype = str(array.dtype)
    if dtype not in _ARRAY_DTYPES:
        raise WireError(f"arrays of dtype {dtype} are not supported")
    data = np.ascontiguousarray(array).tobytes()
    return {"__array__": kind, "dtype": dtype, "shape": list(array.shape), "device": device,
            "data": base64.b64encode(data).decode("ascii")}


def decode(obj, device_map=None, _depth=0, workloads=None):
    """Rebuild a value. `device_map(device_string)` chooses where tensors are placed.

    `workloads(name, params)` rebuilds a named known function; only the sandbox side passes it,
    so a value coming back from student code can never turn into a function.
    """
    if _depth > 20:
        raise WireError("message is nested too deeply")
    if obj is None or isinstance(obj, (bool, str, int, float)):
        return obj
    if isinstance(obj, list):
        return [decode(v, device_map, _depth + 1, workloads) for v in obj]
    if not isinstance(obj, dict):
        raise WireError("malformed message")
    if "__tuple__" in obj:
        return tuple(decode(v, device_map, _depth + 1, workloads) for v in obj["__tuple__"])
    if "__set__" in obj:
        try:
            return set(decode(v, device_map, _depth + 1, workloads) for v in obj["__set__"])
        except TypeError:
            raise WireError("a set of values that cannot be in a set") from None
    if "__dict__" in obj:
        return {str(k): decode(v, device_map, _depth + 1, workloads) for k, v in obj["__dict__"].items()}
    if "__float__" in obj:
        text = obj["__float__"]
        if text not in ("nan", "inf", "-inf"):
            raise WireError("malformed float")
        return float(text)
    if "__complex__" in obj:
        real, imag = obj["__complex__"]
        return complex(float(real), float(imag))
    if "__dtype__" in obj:
        name = str(obj["__dtype__"]).replace("torch.", "")
        if name not in _ARRAY_DTYPES:
            raise WireError("unknown dtype")
        return getattr(_torch(), name)
    if "__array__" in obj:
        return _decode_array(obj, device_map)
    if "__workload__" in obj and workloads is not None:
        return workloads(str(obj["__workload__"]), decode(obj.get("params"), device_map, _depth + 1))
    raise WireError("malformed message")


def _decode_array(obj, device_map):
    dtype = obj.get("dtype")
    if dtype not in _ARRAY_DTYPES:
        raise WireError(f"arrays of dtype {dtype!r} are not supported")
    shape = tuple(int(s) for s in obj["shape"])
    if any(s < 0 for s in shape):
        raise WireError("negative array dimension")
    raw = base64.b64decode(obj["data"], validate=True)
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise WireError("array data does not match its shape")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if obj["__array__"] == "numpy":
        return array
    tensor = _torch().from_numpy(array)
    device = str(obj.get("device", "cpu"))
    target = device_map(device) if device_map else "cpu"
    return tensor.to(target) if target != "cpu" else tensor


# A frame: the payload's length (8 bytes), a tag (32 bytes: the nonce of the request a reply
# answers, or blank), then the JSON payload. The tag lets a reader skip a message meant for
# nobody without parsing it, so junk costs neither memory nor time.
TAG_BYTES = 32
MAX_CONTAINERS = 200_000   # lists and dicts in one message; tensors travel as one string each
MAX_ITEMS = 4_000_000      # commas: items of lists and dicts


def frame(message: dict, tag: str = "") -> bytes:
    """The bytes of one frame: payload length, `tag` padded to TAG_BYTES, JSON payload."""
    payload = json.dumps(message).encode()
    return struct.pack(">Q", len(payload)) + tag.encode("ascii")[:TAG_BYTES].ljust(TAG_BYTES) + payload


def write_message(stream, message: dict, tag: str = ""):
    """Write one framed message to `stream` and flush it."""
    stream.write(frame(message, tag))
    stream.flush()


def read_header(stream, limit=MAX_MESSAGE_BYTES):
    """(payload size, tag) of the next frame."""
    header = read_exactly(stream, 8 + TAG_BYTES)
    (size,) = struct.unpack(">Q", header[:8])
    if size > limit:
        raise WireError(f"message of {size} bytes is larger than the limit of {limit}")
    return size, header[8:].decode("ascii", "replace").strip()


def skip(stream, size):
    """Read and drop a payload without keeping it."""
    while size:
        size -= len(read_exactly(stream, min(size, 1 << 20)))


def parse(payload: bytes) -> dict:
    """The message in a frame's payload, refused before parsing when it holds too many values."""
    if payload.count(b"[") + payload.count(b"{") > MAX_CONTAINERS or payload.count(b",") > MAX_ITEMS:
        raise WireError("message has too many values")
    try:
        message = json.loads(payload)
    except RecursionError:
        raise WireError("message is nested too deeply") from None
    if not isinstance(message, dict):
        raise WireError("malformed message")
    return message


def read_message(stream, limit=MAX_MESSAGE_BYTES) -> dict:
    """The next message from `stream`, whatever its tag."""
    size, _ = read_header(stream, limit)
    return parse(read_exactly(stream, size))


def read_exactly(stream, n) -> bytes:
    """Exactly `n` bytes from `stream`, over as many reads as it takes; EOFError if it closes first."""
    chunks, remaining = [], n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
