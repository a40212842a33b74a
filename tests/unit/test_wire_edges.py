"""Edge cases of the wire codec and its framing (tests/test_wire.py covers the common cases)."""
import enum
import io
import math
import struct

import numpy as np
import pytest
import torch

from autograder import wire


def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def round_trip(value):
    """Through the whole path: encode, frame, read back, decode."""
    stream = io.BytesIO()
    wire.write_message(stream, {"value": wire.encode(value)})
    stream.seek(0)
    return wire.decode(wire.read_message(stream)["value"])


def test_nesting_limit_is_exact_on_both_sides():
    assert round_trip(nested(20)) == nested(20)
    with pytest.raises(wire.WireError, match="nested too deeply"):
        wire.encode(nested(21))
    with pytest.raises(wire.WireError, match="nested too deeply"):
        wire.decode(nested(21))


def wrapped(depth, kinds):
    value = 1
    for level in range(depth):
        value = kinds[level % len(kinds)](value)
    return value


@pytest.mark.parametrize("kinds", [
    [lambda v: [v], lambda v: (v,), lambda v: {"k": v}],
    [lambda v: frozenset({v}), lambda v: (v,)],
])
def test_nesting_counts_every_container_kind(kinds):
    wire.encode(wrapped(20, kinds))  # 20 containers: the value sits at depth 20, the last allowed
    with pytest.raises(wire.WireError, match="nested too deeply"):
        wire.encode(wrapped(21, kinds))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64, torch.complex64,
                                   torch.complex128, torch.int8, torch.int16, torch.int32, torch.int64,
                                   torch.uint8, torch.bool])
def test_every_supported_dtype_round_trips_exactly(dtype):
    value = (torch.arange(12) - 5).reshape(3, 4).to(dtype)
    back = round_trip(value)
    assert back.dtype == dtype and back.shape == value.shape and torch.equal(back, value)
    assert round_trip(dtype) is dtype


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.uint16, torch.float8_e4m3fn])
def test_unsupported_dtypes_are_a_wire_error(dtype):
    """Not a TypeError from numpy: the worker reports a WireError as 'cannot be checked'."""
    with pytest.raises(wire.WireError, match="not supported"):
        wire.encode(torch.zeros(2, dtype=dtype))


@pytest.mark.parametrize("shape", [(0,), (2, 0, 3), (0, 0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool])
def test_empty_tensors_keep_shape_and_dtype(shape, dtype):
    back = round_trip(torch.zeros(shape, dtype=dtype))
    assert back.shape == shape and back.dtype == dtype and back.numel() == 0


def test_empty_numpy_array_stays_numpy():
    back = round_trip(np.zeros((0, 4), dtype=np.float32))
    assert isinstance(back, np.ndarray) and back.shape == (0, 4) and back.dtype == np.float32


def test_non_finite_values_survive_in_tensors_scalars_and_numpy():
    tensor = torch.tensor([math.nan, math.inf, -math.inf, -0.0, 1e-310], dtype=torch.float64)
    back = round_trip(tensor)
    assert torch.equal(back.isnan(), tensor.isnan())
    assert back[1:].tolist() == tensor[1:].tolist() and math.copysign(1, back[3]) == -1.0
    scalars = round_trip([np.float32("nan"), -0.0, math.inf, complex(math.inf, 1)])
    assert math.isnan(scalars[0]) and math.copysign(1, scalars[1]) == -1.0 and scalars[2] == math.inf
    assert scalars[3] == complex(math.inf, 1)


@pytest.mark.parametrize("text", ["", "héllo ✓", "\x00nul", "\ud800 lone surrogate", "x" * 100_000, '"}]\\'])
def test_strings_round_trip(text):
    assert round_trip({"key " + text[:10]: text}) == {"key " + text[:10]: text}


def test_forged_floats_and_dtypes_are_refused():
    for message in ({"__float__": "1e999"}, {"__float__": "nan "}, {"__dtype__": "bfloat16"}):
        with pytest.raises(wire.WireError):
            wire.decode(message)


def test_sets_of_every_hashable_kind():
    value = {"empty": set(), "frozen": frozenset({1, 2}), "tuples": {(1, "a"), (2, "b")}, "mixed": {None, 1.5, "x"}}
    back = round_trip(value)
    assert back == {"empty": set(), "frozen": {1, 2}, "tuples": {(1, "a"), (2, "b")}, "mixed": {None, 1.5, "x"}}
    assert all(type(v) is set for v in back.values())


def test_sets_of_unhashable_values_are_refused_on_decode():
    with pytest.raises(wire.WireError, match="cannot be in a set"):
        wire.decode({"__set__": [{"__dict__": {}}]})


def test_int_subclasses_and_tensor_like_objects_are_refused():
    class Answer(enum.IntEnum):
        YES = 1

    class Liar(float):
        def __eq__(self, other):
            return True

    for value in (Answer.YES, Liar(1.0)):
        with pytest.raises(wire.WireError):
            wire.encode(value)
    assert type(round_trip(True)) is bool and type(round_trip(2 ** 70)) is int


def test_frame_at_the_limit_passes_and_one_byte_over_fails():
    message = {"x": "y" * 50}
    size = len(wire.frame(message)) - 8 - wire.TAG_BYTES
    stream = io.BytesIO(wire.frame(message))
    assert wire.read_message(stream, limit=size) == message
    stream = io.BytesIO(wire.frame(message))
    with pytest.raises(wire.WireError, match="larger than the limit"):
        wire.read_message(stream, limit=size - 1)


def test_a_huge_declared_size_is_refused_before_reading():
    header = struct.pack(">Q", 2 ** 62) + b" " * wire.TAG_BYTES
    with pytest.raises(wire.WireError):
        wire.read_header(io.BytesIO(header))


def test_truncated_frames_end_with_eof():
    data = wire.frame({"answer": 42}, tag="n1")
    for cut in (0, 5, 8 + wire.TAG_BYTES, len(data) - 1):
        with pytest.raises(EOFError):
            wire.read_message(io.BytesIO(data[:cut]))


def test_tags_identify_the_request_a_reply_answers():
    long_nonce = "a" * (wire.TAG_BYTES + 10)
    stream = io.BytesIO(wire.frame({"n": 1}, tag="wrong-nonce") + wire.frame({"n": 2}, tag=long_nonce)
                        + wire.frame({"n": 3}))
    size, tag = wire.read_header(stream)
    assert tag == "wrong-nonce"
    wire.skip(stream, size)
    size, tag = wire.read_header(stream)
    assert tag == long_nonce[:wire.TAG_BYTES], "a tag is cut to its fixed width, never spilling into the payload"
    assert wire.parse(stream.read(size)) == {"n": 2}
    size, tag = wire.read_header(stream)
    assert tag == "" and wire.parse(stream.read(size)) == {"n": 3}


def test_a_non_ascii_tag_cannot_be_sent():
    with pytest.raises(UnicodeEncodeError):
        wire.frame({"n": 1}, tag="nonce-é")


def test_array_data_must_match_shape_and_be_base64():
    good = wire.encode(torch.zeros(2, 2))
    for broken in ({**good, "shape": [2, 3]}, {**good, "data": good["data"][:-4]}, {**good, "data": "!!!!"}):
        with pytest.raises((wire.WireError, ValueError)):
            wire.decode(broken)


def test_tensors_decode_onto_the_mapped_device():
    encoded = wire.encode(torch.ones(3))
    assert encoded["device"] == "cpu"
    encoded["device"] = "cuda:0"
    seen = []
    back = wire.decode(encoded, device_map=lambda device: seen.append(device) or "cpu")
    assert seen == ["cuda:0"] and back.device.type == "cpu"
