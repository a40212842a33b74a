"""The message format between the sandbox and the judge: faithful for data, closed to anything else."""
import io
import math

import numpy as np
import pytest
import torch

from autograder import wire
from autograder.checks.workloads import Workload


@pytest.mark.parametrize("value", [
    torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(5).float(), torch.tensor(3.5),
    torch.zeros(0, 3), torch.arange(6).reshape(2, 3), torch.tensor([True, False]),
    torch.randn(3, dtype=torch.complex128), torch.randn(4, 4).T,  # non-contiguous
])
def test_tensors_round_trip(value):
    back = wire.decode(wire.encode(value))
    assert isinstance(back, torch.Tensor) and type(back) is torch.Tensor
    assert back.dtype == value.dtype and back.shape == value.shape
    assert torch.equal(back, value)


def test_plain_data_round_trips():
    value = {"a": [1, 2.5, None, True, "x"], "b": (1, (2, 3)), "c": complex(1, -2), "d": np.float32(1.5),
             "e": np.arange(3), "f": torch.float32}
    back = wire.decode(wire.encode(value))
    assert back["a"] == [1, 2.5, None, True, "x"] and back["b"] == (1, (2, 3)) and back["c"] == complex(1, -2)
    assert back["d"] == 1.5 and np.array_equal(back["e"], np.arange(3)) and back["f"] is torch.float32


def test_non_finite_floats():
    back = wire.decode(wire.encode([float("nan"), float("inf"), float("-inf")]))
    assert math.isnan(back[0]) and back[1] == math.inf and back[2] == -math.inf


def test_tensor_subclasses_arrive_as_plain_tensors():
    class Liar(torch.Tensor):
        def __eq__(self, other):
            return True
    back = wire.decode(wire.encode(torch.zeros(3).as_subclass(Liar)))
    assert type(back) is torch.Tensor and not torch.equal(back, torch.ones(3))


@pytest.mark.parametrize("value", [object(), lambda: 1, {1: "int key"}, torch.nn.Linear(2, 2), {"s": {1, print}}])
def test_other_objects_are_refused(value):
    with pytest.raises(wire.WireError):
        wire.encode(value)


@pytest.mark.parametrize("message", [
    {"__array__": "torch", "dtype": "object", "shape": [1], "data": ""},
    {"__array__": "torch", "dtype": "float64", "shape": [4], "data": "AAAA"},
    {"__array__": "torch", "dtype": "float64", "shape": [-1], "data": ""},
    {"__float__": "__import__('os')"},
    {"__dtype__": "Tensor"},
    {"__pickle__": "gASVAAAA"},
    {"__workload__": "matmul", "params": {"__dict__": {}}},  # no factory on the judge's side
])
def test_malformed_or_dangerous_messages_are_rejected(message):
    with pytest.raises((wire.WireError, ValueError)):
        wire.decode(message)


def test_deep_nesting_is_refused():
    value = []
    for _ in range(50):
        value = [value]
    with pytest.raises(wire.WireError):
        wire.encode(value)


def test_workloads_are_rebuilt_only_where_a_factory_is_given():
    encoded = wire.encode(Workload("cpu_sleep", ms=1))
    built = wire.decode(encoded, workloads=lambda name, params: (name, params))
    assert built == ("cpu_sleep", {"ms": 1})


def test_framing_and_size_limit():
    stream = io.BytesIO()
    wire.write_message(stream, {"hello": [1, 2]})
    stream.seek(0)
    assert wire.read_message(stream) == {"hello": [1, 2]}
    stream = io.BytesIO()
    wire.write_message(stream, {"big": "x" * 1000})
    stream.seek(0)
    with pytest.raises(wire.WireError):
        wire.read_message(stream, limit=100)


def test_sets_arrive_as_sets():
    """A student's answer given as a set reaches the check as a set (which can then say so)."""
    back = wire.decode(wire.encode({"ridge": {"queries", "keys"}, "none": frozenset()}))
    assert back == {"ridge": {"queries", "keys"}, "none": set()}
    with pytest.raises(wire.WireError):
        wire.decode({"__set__": [[1, 2]]})  # a list cannot be in a set


def test_replies_for_someone_else_are_skipped_unread():
    stream = io.BytesIO()
    stream.write(wire.frame({"junk": "x" * 100_000}, tag="not-yours"))
    stream.write(wire.frame({"answer": 42}, tag="abc123"))
    stream.seek(0)
    size, tag = wire.read_header(stream)
    assert tag == "not-yours"
    wire.skip(stream, size)
    size, tag = wire.read_header(stream)
    assert tag == "abc123" and wire.parse(wire.read_exactly(stream, size)) == {"answer": 42}


class _Trickle:
    """A pipe that hands out at most one byte per read, as a slow writer's pipe can."""

    def __init__(self, data: bytes):
        self.stream = io.BytesIO(data)

    def read(self, n):
        return self.stream.read(min(n, 1))


def test_read_exactly_gathers_short_reads_and_stops_at_a_closed_channel():
    assert wire.read_exactly(_Trickle(b"abcdef"), 4) == b"abcd"
    assert wire.read_message(_Trickle(wire.frame({"answer": 42}, tag="t"))) == {"answer": 42}
    with pytest.raises(EOFError):
        wire.read_exactly(_Trickle(b"abc"), 4)


@pytest.mark.parametrize("payload", [
    b"[" * 200_000 + b"]" * 200_000,        # nesting that would exhaust the parser's recursion
    b'{"junk": [' + b"[]," * 300_000 + b"[]]}",  # millions of tiny objects: gigabytes in memory
    b"[1, 2, 3]",                            # not a message
])
def test_hostile_payloads_are_refused_cheaply(payload):
    with pytest.raises(wire.WireError):
        wire.parse(payload)
