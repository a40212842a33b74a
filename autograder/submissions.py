"""Turn the TA's paths into a list of submissions, each with exactly one notebook or a problem."""
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
SKIP_PARTS = {".ipynb_checkpoints", "__MACOSX"}


@dataclass
class Submission:
    label: str           # the row's `file` column
    source: Path         # what the TA gave us
    notebook: bytes = b""
    problem: str = ""    # when set, the submission cannot be run; this is its status

    @property
    def key(self) -> str:
        return hashlib.sha256(self.notebook or self.problem.encode()).hexdigest()


def collect(paths) -> list:
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".ipynb", ".zip")
                            and not SKIP_PARTS & set(p.parts))
        else:
            files.append(path)
    labels = [f.name for f in files]
    duplicated = {l for l in labels if labels.count(l) > 1}
    return [load(f, str(f) if f.name in duplicated else f.name) for f in files]


def load(path: Path, label: str) -> Submission:
    sub = Submission(label, path)
    if not path.exists():
        sub.problem = "file not found"
    elif path.suffix == ".zip":
        sub.notebook, sub.problem = _from_zip(path)
    else:
        try:
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                sub.problem = f"not graded: the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MB"
            else:
                sub.notebook = path.read_bytes()
        except OSError as error:
            sub.problem = f"not readable: {error}"
    return sub


def _from_zip(path: Path):
    try:
        with zipfile.ZipFile(path) as archive:
            notebooks = [i for i in archive.infolist() if i.filename.endswith(".ipynb")
                         and not SKIP_PARTS & set(Path(i.filename).parts)]
            if not notebooks:
                return b"", "no notebook in the zip file"
            notebooks.sort(key=lambda i: (i.filename.count("/"), i.filename))
            chosen = notebooks[0]
            if chosen.file_size > MAX_NOTEBOOK_BYTES:
                return b"", f"not graded: the notebook in the zip is larger than {MAX_NOTEBOOK_BYTES >> 20} MB"
            return archive.read(chosen), ""
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as error:
        return b"", f"not a zip file: {error}"
