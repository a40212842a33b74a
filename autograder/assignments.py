"""Where each assignment's files live.

An assignment is a master notebook `solutions/<id>.ipynb`: assignments are discovered from there,
never listed by hand (docs/NEW_ASSIGNMENT.md says what else a new one needs).
"""
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The course contract's four assignments, in the order tables and reports list them; any other
# master notebook follows them in alphabetical order.
CONTRACT_ORDER = ("ssm_forward_cpu", "ssm_forward_gpu", "purification", "ridge_attention")


def discover(root: Path = ROOT) -> tuple:
    """The ids of the assignments under `root`: the stems of `solutions/*.ipynb`."""
    stems = {path.stem for path in (root / "solutions").glob("*.ipynb")}
    known = [i for i in CONTRACT_ORDER if i in stems]
    return tuple(known + sorted(stems - set(known)))


@dataclass(frozen=True)
class Assignment:
    """One assignment, named by its id; where its master, student notebook and zip live."""

    id: str

    @property
    def master(self) -> Path:
        """The master notebook (solutions and tests): `solutions/<id>.ipynb`."""
        return ROOT / "solutions" / f"{self.id}.ipynb"

    @property
    def student(self) -> Path:
        """The generated student notebook: `notebooks/<id>.ipynb`."""
        return ROOT / "notebooks" / f"{self.id}.ipynb"

    @property
    def zip_path(self) -> Path:
        """The generated autograder zip: `autograder/zips/<id>.zip`."""
        return ROOT / "autograder" / "zips" / f"{self.id}.zip"


def available() -> list:
    """Every assignment (each master notebook in solutions/), in contract order."""
    return [Assignment(i) for i in discover()]


def get(assignment_id: str) -> Assignment:
    """The assignment with this id, once built; a clear exit when it is unknown or not built."""
    ids = discover()
    if assignment_id not in ids:
        raise SystemExit(f"unknown assignment {assignment_id!r}; expected one of: {', '.join(ids)}")
    spec = Assignment(assignment_id)
    if not spec.zip_path.exists():
        raise SystemExit(f"{spec.zip_path} is missing: run `python -m autograder build` first")
    return spec


# Without one of these device files no CUDA driver can answer (Linux; WSL2 uses /dev/dxg): the
# answer is known without importing torch, which would cost the grader seconds at every start.
CUDA_DEVICE_FILES = ("/dev/nvidiactl", "/dev/dxg")


@lru_cache(None)
def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (asked once; torch is imported only when it may)."""
    if sys.platform.startswith("linux") and not any(os.path.exists(path) for path in CUDA_DEVICE_FILES):
        return False
    import torch
    return torch.cuda.is_available()
