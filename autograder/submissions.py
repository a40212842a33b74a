"""Turn the TA's paths into a list of submissions, each with exactly one notebook or a problem."""
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
SKIP_PARTS = {".ipynb_checkpoints", "__MACOSX"}
SUFFIXES = (".ipynb", ".zip")


@dataclass
class Submission:
    label: str           # the row's `file` column
    source: Path         # what the TA gave us
    notebook: bytes = b""
    problem: str = ""    # when set, the submission cannot be run; this is its status
    note: str = ""       # something the TA should know about an otherwise gradable submission

    @property
    def key(self) -> str:
        return hashlib.sha256(self.notebook or self.problem.encode()).hexdigest()

    @property
    def identity(self) -> str:
        """The file this row stands for, the same whichever way the TA named it."""
        return printable(os.path.realpath(self.source))


def printable(name) -> str:
    """A file name as text that can always be written (undecodable bytes become \\xNN)."""
    return os.fsencode(str(name)).decode("utf-8", "backslashreplace")


def _wanted(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES and not SKIP_PARTS & set(path.parts) \
        and not path.name.startswith("._")  # macOS resource forks next to the real file


def collect(paths, prefer: str = "") -> list:
    """Submissions in the order given (folders sorted). Files found in a folder are labelled by
    their path inside it; two inputs with the same label are labelled by their full paths.
    `prefer`: the notebook name to pick when a zip file holds several."""
    entries = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            entries += [(p, printable(p.relative_to(path))) for p in sorted(path.rglob("*"))
                        if p.is_file() and _wanted(p.relative_to(path))]
        else:
            entries.append((path, printable(path.name)))
    labels = [label for _, label in entries]
    duplicated = {label for label in labels if labels.count(label) > 1}
    return [load(path, printable(path) if label in duplicated else label, prefer) for path, label in entries]


def load(path: Path, label: str, prefer: str = "") -> Submission:
    sub = Submission(label, path)
    if not path.exists():
        sub.problem = "file not found"
    elif path.suffix.lower() == ".zip":
        sub.notebook, sub.problem, sub.note = _from_zip(path, prefer)
    else:
        try:
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                sub.problem = f"not graded: the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MB"
            else:
                sub.notebook = path.read_bytes()
        except OSError as error:
            sub.problem = f"not readable: {error.strerror or error}"
    return sub


def _from_zip(path: Path, prefer: str):
    """(notebook bytes, problem, note). Prefers the assignment's notebook name; says so when the
    zip file holds other notebooks too."""
    try:
        with zipfile.ZipFile(path) as archive:
            notebooks = [i for i in archive.infolist() if not i.is_dir() and _wanted(Path(i.filename))
                         and Path(i.filename).suffix.lower() == ".ipynb"
                         and not any(part.startswith(".") for part in Path(i.filename).parts)]
            if not notebooks:
                return b"", "no notebook in the zip file", ""
            named = [i for i in notebooks if Path(i.filename).name.lower() == prefer.lower()]
            pool = sorted(named or notebooks, key=lambda i: (i.filename.count("/"), i.filename))
            chosen = pool[0]
            note = ""
            if len(notebooks) > 1:
                note = f"the zip file holds {len(notebooks)} notebooks; graded {printable(chosen.filename)}"
            if chosen.file_size > MAX_NOTEBOOK_BYTES:
                return b"", f"not graded: the notebook in the zip is larger than {MAX_NOTEBOOK_BYTES >> 20} MB", ""
            if chosen.flag_bits & 0x1:
                return b"", "not graded: the zip file is password-protected", ""
            return archive.read(chosen), "", note
    except zipfile.BadZipFile as error:
        if "CRC" in str(error):
            return b"", "not graded: the zip file is damaged (a file in it fails its checksum)", ""
        return b"", f"not a zip file: {error}", ""
    except (OSError, RuntimeError, NotImplementedError, EOFError, ValueError) as error:
        return b"", f"not a zip file: {getattr(error, 'strerror', None) or error}", ""
