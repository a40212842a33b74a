"""Course-wide settings from `course.toml` (the one file an instructor edits)."""
import tomllib
from functools import lru_cache

from .assignments import ROOT

GPU_POLICIES = ("exclude", "required")


@lru_cache(None)
def load() -> dict:
    path = ROOT / "course.toml"
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    grading = data.get("grading", {})
    if grading.get("gpu_policy", "exclude") not in GPU_POLICIES:
        raise SystemExit(f"course.toml: gpu_policy must be one of {GPU_POLICIES}")
    return data


def grading(key, default):
    return load().get("grading", {}).get(key, default)


def course(key, default):
    return load().get("course", {}).get(key, default)
