#!/usr/bin/env bash
# Wheels for `make gpu-check` on a GPU machine that has no network: x86-64 Linux, CPython 3.12,
# and its own CUDA build of torch. Fetches every package the check needs except torch, and except
# what that machine's image already has (tools/gpu_image_packages.txt), into one git-ignored folder
# that travels with the working tree (the whole tree must stay under 64 MiB).
#
#   tools/gpu_wheels.sh             resolve, download, drop stale wheels, check the folder
#   tools/gpu_wheels.sh --resolve   resolve only: print the pins it would download (needs PyPI)
#   tools/gpu_wheels.sh --verify    check an existing folder offline: size, platform tags, one
#                                   version per package, the folder matches its PINS.txt
#
# Environment: PYTHON (a Python with pip >= 22.2, default python3), GPU_WHEELS (the folder,
# default tools/gpu_wheels), GPU_WHEELS_LIMIT_MB (default: 64 MiB less the tracked files).
# Left out on purpose: playwright and greenlet (otter asks for nbconvert[webpdf]; PDF export is
# never used by the check, and playwright alone is ~40 MB); nbgrader comes without its
# dependencies (the notebooks' setup cell installs any pinned package that is missing, so it must
# be present, but the check never runs it). No --no-binary exception is needed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DEST="${GPU_WHEELS:-$ROOT/tools/gpu_wheels}"
MODE="${1:-download}"
case "$MODE" in
    download|--resolve|--verify) ;;
    *) echo "usage: $0 [--resolve|--verify]" >&2; exit 2 ;;
esac

PLATFORM_FLAGS=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
                --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_26_x86_64
                --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
                --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 --platform manylinux_2_5_x86_64
                --platform manylinux1_x86_64 --platform any)
NOT_NEEDED="playwright greenlet"
WITHOUT_DEPS="nbgrader"

tracked_bytes() {
    (cd "$ROOT" && git ls-files -z 2>/dev/null | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
}

limit_bytes() {
    if [ -n "${GPU_WHEELS_LIMIT_MB:-}" ]; then
        echo $(( GPU_WHEELS_LIMIT_MB * 1024 * 1024 ))
    else
        echo $(( 64 * 1024 * 1024 - $(tracked_bytes) ))
    fi
}

verify() {
    "$PYTHON" - "$DEST" "$(limit_bytes)" <<'EOF'
import re
import sys
from pathlib import Path

folder, limit = Path(sys.argv[1]), int(sys.argv[2])
if not folder.is_dir():
    sys.exit(f"gpu wheels: {folder} does not exist: run tools/gpu_wheels.sh")
problems = []
wheels = sorted(folder.glob("*.whl"))
others = [p.name for p in folder.iterdir() if p.suffix != ".whl" and p.name != "PINS.txt"]
if others:
    problems.append(f"not wheels: {others}")
size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
if size > limit:
    problems.append(f"{size / 2**20:.1f} MiB, over the limit of {limit / 2**20:.1f} MiB")
versions = {}
for wheel in wheels:
    parts = wheel.name[:-4].split("-")
    if len(parts) not in (5, 6):
        problems.append(f"{wheel.name}: not a wheel file name")
        continue
    name, version, (python, abi, platforms) = re.sub(r"[-_.]+", "-", parts[0]).lower(), parts[1], parts[-3:]
    versions.setdefault(name, []).append(version)
    if not any(tag in ("py3", "cp312") or (tag.startswith("cp3") and abi == "abi3") for tag in python.split(".")):
        problems.append(f"{wheel.name}: not for CPython 3.12")
    if not any(p == "any" or (p.startswith("manylinux") and p.endswith("x86_64")) for p in platforms.split(".")):
        problems.append(f"{wheel.name}: not for x86-64 Linux")
problems += [f"{name}: several versions {sorted(v)}" for name, v in versions.items() if len(v) > 1]
pins_file = folder / "PINS.txt"
if not pins_file.exists():
    problems.append("PINS.txt is missing")
else:
    pins = {}
    for line in pins_file.read_text().split():
        name, _, version = line.partition("==")
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    have = {name: v[0] for name, v in versions.items()}
    if pins != have:
        missing = sorted(set(pins) - set(have))
        extra = sorted(set(have) - set(pins))
        changed = sorted(n for n in set(pins) & set(have) if pins[n] != have[n])
        problems.append(f"the wheels do not match PINS.txt (missing {missing}, extra {extra}, other versions {changed})")
if problems:
    print("gpu wheels: FAILED")
    print("\n".join("  " + p for p in problems))
    sys.exit(1)
print(f"gpu wheels: {len(wheels)} wheels, {size / 2**20:.1f} MiB (limit {limit / 2**20:.1f} MiB) in {folder}")
EOF
}

if [ "$MODE" = "--verify" ]; then
    verify
    exit
fi

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
# Every pin of requirements-dev.txt (and the requirements.txt it includes) except torch.
grep -h -E '^[A-Za-z0-9_.-]+==' "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | sed 's/[[:space:]]*#.*//' \
    | grep -v -i -E "^(torch|${WITHOUT_DEPS// /|})==" > "$STAGE/requirements.txt"
grep -h -i -E "^(${WITHOUT_DEPS// /|})==" "$ROOT/requirements.txt" > "$STAGE/without_deps.txt" || true

echo "resolving for CPython 3.12 on x86-64 Linux (no wheel is downloaded for this step) ..." >&2
"$PYTHON" -m pip install --quiet --disable-pip-version-check --dry-run --ignore-installed --report "$STAGE/report.json" \
    "${PLATFORM_FLAGS[@]}" --target "$STAGE/never" -r "$STAGE/requirements.txt" >&2

"$PYTHON" - "$STAGE/report.json" "$ROOT/tools/gpu_image_packages.txt" "$NOT_NEEDED" "$STAGE/without_deps.txt" \
    > "$STAGE/pins.txt" <<'EOF'
import json
import re
import sys

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

report, image_list, not_needed, without_deps = sys.argv[1:]
on_image = {canonical(line.strip()) for line in open(image_list) if line.strip() and not line.startswith("#")}
skip = on_image | {canonical(n) for n in not_needed.split()}
pins = {canonical(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.load(open(report))["install"]}
for line in open(without_deps):
    name, _, version = line.strip().partition("==")
    pins[canonical(name)] = version
for name in sorted(pins):
    if name not in skip:
        print(f"{name}=={pins[name]}")
EOF

if [ "$MODE" = "--resolve" ]; then
    cat "$STAGE/pins.txt"
    echo "$(wc -l < "$STAGE/pins.txt") packages to bring (the rest is on the GPU machine's image)" >&2
    exit 0
fi

mkdir -p "$DEST"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps "${PLATFORM_FLAGS[@]}" -d "$DEST" \
    -r "$STAGE/pins.txt" >&2
cp "$STAGE/pins.txt" "$DEST/PINS.txt"
# Drop wheels that no pin names (older versions, packages no longer needed): one version each.
"$PYTHON" - "$DEST" <<'EOF'
import re
import sys
from pathlib import Path

folder = Path(sys.argv[1])
pins = {}
for line in (folder / "PINS.txt").read_text().split():
    name, _, version = line.partition("==")
    pins[re.sub(r"[-_.]+", "-", name).lower()] = version
for wheel in folder.glob("*.whl"):
    name, version = wheel.name.split("-")[:2]
    if pins.get(re.sub(r"[-_.]+", "-", name).lower()) != version:
        print(f"removing stale {wheel.name}", file=sys.stderr)
        wheel.unlink()
EOF
verify
