"""Files that readers see whole: write under a temporary name next to the file, then rename."""
import os
import threading
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path):
    """A temporary path next to `path` to write to; when the block ends without an error it
    replaces `path` in one step, so readers see the old file or the new one, never half of one
    (also with two writers: each process and thread gets its own temporary name)."""
    path = Path(path)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write(path: Path, data):
    """Write `data` (bytes, or text as UTF-8) to `path` through `replacing`."""
    with replacing(path) as temporary:
        if isinstance(data, bytes):
            temporary.write_bytes(data)
        else:
            temporary.write_text(data, encoding="utf-8", errors="backslashreplace")
