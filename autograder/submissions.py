"""Turn the TA's paths into a list of submissions, each with exactly one notebook or a problem."""
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import sanitize
from .results import Outcome, Status

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
# What a zip file may hold, checked from its end-of-central-directory record and central
# directory before any member is read (an otter export holds a handful of small files).
MAX_ZIP_MEMBERS = 1000
MAX_CENTRAL_DIRECTORY_BYTES = 1024 * 1024
MAX_MEMBER_NAME_CHARS = 1000
MAX_ZIP_UNCOMPRESSED_BYTES = 1024 ** 3  # declared sizes of all members together
MAX_COMPRESSION_RATIO = 100  # for a notebook of more than RATIO_CHECKED_ABOVE bytes
RATIO_CHECKED_ABOVE = 1024 * 1024
SKIP_PARTS = {".ipynb_checkpoints", "__MACOSX"}
SUFFIXES = (".ipynb", ".zip")


@dataclass
class Submission:
    """One row of a batch: the file the TA gave, its notebook bytes, or why it cannot be run."""

    label: str           # the row's `file` column
    source: Path         # what the TA gave us
    notebook: bytes = b""
    problem: Outcome | None = None  # when set, the submission cannot be run: its status
    note: str = ""       # something the TA should know about an otherwise gradable submission

    @property
    def key(self) -> str:
        """The SHA-256 of the notebook (of the problem when there is none): the cache key's part."""
        problem = self.problem.text.encode() if self.problem else b""  # an empty file has neither
        return hashlib.sha256(self.notebook or problem).hexdigest()

    @property
    def identity(self) -> str:
        """The file this row stands for, the same whichever way the TA named it."""
        return printable(os.path.realpath(self.source))


def printable(name) -> str:
    """A file name as text that can always be written (undecodable bytes become \\xNN)."""
    return os.fsencode(str(name)).decode("utf-8", "backslashreplace")


def label_for(name) -> str:
    """A file name as a row's label: printable, one line, capped (see `sanitize.name`)."""
    return sanitize.name(printable(name))


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
            entries += [(p, label_for(p.relative_to(path))) for p in sorted(path.rglob("*"))
                        if p.is_file() and _wanted(p.relative_to(path))]
        else:
            entries.append((path, label_for(path.name)))
    labels = [label for _, label in entries]
    duplicated = {label for label in labels if labels.count(label) > 1}
    return [load(path, label_for(path) if label in duplicated else label, prefer) for path, label in entries]


def load(path: Path, label: str, prefer: str = "") -> Submission:
    """The submission at `path`: a notebook, or the notebook inside an otter export zip (`prefer`
    names the one to take when there are several); a problem when there is none."""
    sub = Submission(label, path)
    if not path.exists():
        sub.problem = Outcome(Status.FAILED, "file not found")
    elif path.suffix.lower() == ".zip":
        sub.notebook, sub.problem, sub.note = _from_zip(path, prefer)
    else:
        try:
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                sub.problem = _refused(f"the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
            else:
                sub.notebook = path.read_bytes()
        except OSError as error:
            sub.problem = Outcome(Status.NOT_READABLE, str(error.strerror or error))
    return sub


def _from_zip(path: Path, prefer: str):
    """(notebook bytes, problem (an Outcome) or None, note). Prefers the assignment's notebook name; says so when the
    zip file holds other notebooks too."""
    try:
        with open(path, "rb") as handle:
            problem = zip_problem(handle)
            if problem:
                return b"", problem, ""
            archive = zipfile.ZipFile(handle)
            problem = members_problem(archive.infolist())
            if problem:
                return b"", problem, ""
            notebooks = [i for i in archive.infolist() if not i.is_dir() and _wanted(Path(i.filename))
                         and Path(i.filename).suffix.lower() == ".ipynb"
                         and not any(part.startswith(".") for part in Path(i.filename).parts)]
            if not notebooks:
                return b"", Outcome(Status.FAILED, "no notebook in the zip file"), ""
            named = [i for i in notebooks if Path(i.filename).name.lower() == prefer.lower()]
            pool = sorted(named or notebooks, key=lambda i: (i.filename.count("/"), i.filename))
            chosen = pool[0]
            note = ""
            if len(notebooks) > 1:
                note = f"the zip file holds {len(notebooks)} notebooks; graded {sanitize.name(chosen.filename)}"
            if chosen.file_size > MAX_NOTEBOOK_BYTES:
                return b"", _refused(f"the notebook in the zip is larger than {MAX_NOTEBOOK_BYTES >> 20} MB"), ""
            if chosen.file_size > RATIO_CHECKED_ABOVE and \
                    chosen.file_size > MAX_COMPRESSION_RATIO * max(chosen.compress_size, 1):
                return b"", _refused(f"the notebook in the zip file is compressed more than "
                                    f"{MAX_COMPRESSION_RATIO}:1 (submit the .ipynb file itself)"), ""
            if chosen.flag_bits & 0x1:
                return b"", _refused("the zip file is password-protected"), ""
            return archive.read(chosen), None, note
    except zipfile.BadZipFile as error:
        if "CRC" in str(error):
            return b"", _refused("the zip file is damaged (a file in it fails its checksum)"), ""
        return b"", _not_a_zip(f"{sanitize.line(error)}"), ""
    except (OSError, RuntimeError, NotImplementedError, EOFError, ValueError) as error:
        return b"", _not_a_zip(f"{sanitize.line(getattr(error, 'strerror', None) or error)}"), ""


def _refused(detail: str) -> Outcome:
    return Outcome(Status.NOT_GRADED, detail)


def _not_a_zip(detail: str) -> Outcome:
    return Outcome(Status.FAILED, f"not a zip file: {detail}")


def zip_problem(handle):
    """None when the zip file's end-of-central-directory record promises a central directory
    within the caps, else the `Outcome` that refuses it. Reads at most the last 64 KB: a million entries cost nothing.
    The record is found the way `zipfile` finds it, so the numbers checked are the ones it uses."""
    end = zipfile._EndRecData(handle)
    if end is None:
        return _not_a_zip("no end-of-central-directory record (not a zip file, or cut short)")
    members, directory_bytes = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if members > MAX_ZIP_MEMBERS:
        return _refused(f"the zip file holds {members} files, more than {MAX_ZIP_MEMBERS}")
    if directory_bytes > MAX_CENTRAL_DIRECTORY_BYTES:
        return _refused(f"the zip file's list of files takes {directory_bytes} bytes, more than "
                                          f"{MAX_CENTRAL_DIRECTORY_BYTES}")
    return None


def members_problem(infos):
    """None when the members (as listed in the central directory, nothing read yet) are within
    the caps, else the `Outcome` that refuses it. Names are never used as paths: nothing is extracted to disk."""
    if len(infos) > MAX_ZIP_MEMBERS:
        return _refused(f"the zip file holds {len(infos)} files, more than {MAX_ZIP_MEMBERS}")
    if any(len(info.filename) > MAX_MEMBER_NAME_CHARS for info in infos):
        return _refused(f"a file name in the zip file is longer than {MAX_MEMBER_NAME_CHARS} characters")
    if sum(info.file_size for info in infos) > MAX_ZIP_UNCOMPRESSED_BYTES:
        return _refused(f"the files in the zip file add up to more than {MAX_ZIP_UNCOMPRESSED_BYTES >> 30} GB")
    return None
