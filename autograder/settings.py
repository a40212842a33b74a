"""Course-wide settings from `course.toml` (the one file an instructor edits)."""
import tomllib
from functools import lru_cache

from .assignments import ROOT

# What a check that needs CUDA counts for on a machine without a GPU: 'exclude' leaves it out of
# the total, 'required' scores it 0. `checks.core.gpu_policy` falls back to the same default.
GPU_EXCLUDE, GPU_REQUIRED = "exclude", "required"
GPU_POLICIES = (GPU_EXCLUDE, GPU_REQUIRED)
DEFAULT_GPU_POLICY = GPU_EXCLUDE


@lru_cache(None)
def load() -> dict:
    """The parsed `course.toml` ({} when there is none); exits when its GPU policy is unknown."""
    path = ROOT / "course.toml"
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    grading = data.get("grading", {})
    if grading.get("gpu_policy", DEFAULT_GPU_POLICY) not in GPU_POLICIES:
        raise SystemExit(f"course.toml: gpu_policy must be one of {GPU_POLICIES}")
    return data


def grading(key, default):
    """`key` of the [grading] table, or `default`."""
    return load().get("grading", {}).get(key, default)


def course(key, default):
    """`key` of the [course] table, or `default`."""
    return load().get("course", {}).get(key, default)


def gpu_policy() -> str:
    """The course's GPU policy (one of `GPU_POLICIES`): course.toml's, else the default."""
    return grading("gpu_policy", DEFAULT_GPU_POLICY)
