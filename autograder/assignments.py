"""Where each assignment's files live. Ids are fixed by the course contract."""
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDS = ("ssm_forward_cpu", "ssm_forward_gpu", "purification", "ridge_attention")


@dataclass(frozen=True)
class Assignment:
    id: str

    @property
    def master(self) -> Path:
        return ROOT / "solutions" / f"{self.id}.ipynb"

    @property
    def student(self) -> Path:
        return ROOT / "notebooks" / f"{self.id}.ipynb"

    @property
    def zip_path(self) -> Path:
        return ROOT / "autograder" / "zips" / f"{self.id}.zip"


def available() -> list:
    """The assignments whose master notebook exists, in contract order."""
    return [Assignment(i) for i in IDS if Assignment(i).master.exists()]


def get(assignment_id: str) -> Assignment:
    if assignment_id not in IDS:
        raise SystemExit(f"unknown assignment {assignment_id!r}; expected one of: {', '.join(IDS)}")
    spec = Assignment(assignment_id)
    if not spec.zip_path.exists():
        raise SystemExit(f"{spec.zip_path} is missing: run `python -m autograder build` first")
    return spec


@lru_cache(None)
def cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()
