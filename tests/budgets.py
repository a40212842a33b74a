"""Time budgets for tests that grade, scaled by how contended the CPUs are when the test starts.

A verdict must not depend on machine speed or load: a notebook that should complete gets a
budget that grows with the measured contention, never a race against a fixed clock. The
contention is measured, not assumed: the wall time per CPU second of a short busy loop in this
process (1 on an idle core; about the number of runnable processes per core on a busy machine),
which is independent of how fast the machine is.
"""
import time

MAX_SCALE = 6.0  # beyond this the machine is too busy to test on; budgets stop growing


def contention(cpu_seconds: float = 0.3) -> float:
    """Wall seconds per CPU second this process gets right now."""
    wall, cpu = time.perf_counter(), time.process_time()
    while time.process_time() - cpu < cpu_seconds:
        sum(range(1000))
    return (time.perf_counter() - wall) / (time.process_time() - cpu)


def scale() -> float:
    """How much longer than on an idle machine things take now (1 to MAX_SCALE)."""
    return min(MAX_SCALE, max(1.0, contention()))


def budget(seconds: float, factor: float | None = None) -> int:
    """`seconds` (a budget that suffices on an idle machine) scaled by the contention, in whole
    seconds so that messages such as "timeout after 80 s" read the same."""
    return int(round(seconds * (scale() if factor is None else factor)))
