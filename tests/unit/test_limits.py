"""How the sandbox tells a memory kill from other deaths (pure functions of the exit code and output)."""
import signal

from autograder.limits import FailureKind, killed_for_memory, mentions_out_of_memory


def test_torch_and_python_out_of_memory_messages_are_recognized():
    assert mentions_out_of_memory("RuntimeError: [enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
                                  "can't allocate memory: you tried to allocate 13421772800 bytes")
    assert mentions_out_of_memory("MemoryError")
    assert mentions_out_of_memory("terminate called after throwing an instance of 'std::bad_alloc'")
    assert not mentions_out_of_memory("ValueError: expected (N, T, H), got (N, H, T)")


def test_a_kill_counts_as_memory_only_while_allocating():
    assert killed_for_memory(-signal.SIGKILL, "numpy: failed to alloc 8 GB")
    assert killed_for_memory(137, "alloc")
    assert not killed_for_memory(-signal.SIGKILL, "Killed")  # a kill for another reason (the time limit)
    assert not killed_for_memory(1, "Traceback ... alloc_helper() raised ValueError")
    assert killed_for_memory(1, "MemoryError")


def test_failure_kinds_have_distinct_values():
    values = [kind.value for kind in FailureKind]
    assert len(values) == len(set(values))
    assert FailureKind("timeout") is FailureKind.TIMEOUT
