"""Make untrusted text safe to show: in a terminal, a CSV cell, markdown or an HTML page.

Untrusted text is anything a submission controls: messages its process sends, the texts of its
exceptions, file names and zip member names, student answers shown as plain text. Shown raw, a
newline forges a row of the score table and an ANSI escape (ESC, 0x1b) rewrites or hides what a
TA's terminal showed before. Every function here returns printable characters only: control
characters (C0, DEL, C1) and other invisible code points (bidirectional overrides, line
separators, surrogates left by undecodable bytes) are written as visible escapes (`\\x1b`,
`\\u202e`, `\\udcff`), and the result is capped in length. So text passed through `line` or
`name` holds no character below 0x20 at all, and text passed through `block` none but "\\n".

    line(text)   a message on one line: runs of whitespace (newlines included) become one space
    name(text)   a file or member name on one line: nothing merged, so distinct names stay distinct
    block(text)  several lines (e.g. a written answer): "\\n" kept, other controls escaped

These do not escape for a format (CSV quoting, markdown, HTML): do that after sanitizing.
"""
import re

LINE_LIMIT = 500
NAME_LIMIT = 300
BLOCK_LIMIT = 20_000
ELLIPSIS = "..."

_WHITESPACE_RUN = re.compile(r"\s+")


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _visible(text: str) -> str:
    """Every character that is not printable written as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def _as_text(value) -> str:
    return value if isinstance(value, str) else str(value)


def line(value, limit: int = LINE_LIMIT) -> str:
    """`value` as one line of printable text, at most `limit` characters: runs of whitespace
    (spaces, tabs, newlines, carriage returns, Unicode separators) become one space, every other
    invisible character its escape."""
    text = _as_text(value)[:limit * 2 + 2]  # enough to fill `limit` after merging runs
    text = _WHITESPACE_RUN.sub(" ", text).strip()
    return _capped(_visible(text), limit)


def name(value, limit: int = NAME_LIMIT) -> str:
    """A file or zip member name as one line of printable text, at most `limit` characters.
    Unlike `line`, whitespace other than a plain space is escaped, not merged ("a\\tb" shows
    as `a\\x09b`), so two different names do not come out the same."""
    text = _as_text(value)[:limit + 1]
    return _capped(_visible(text), limit)


def block(value, limit: int = BLOCK_LIMIT) -> str:
    """Text of several lines, at most `limit` characters: "\\r\\n" and "\\r" become "\\n", tabs
    four spaces, and every other invisible character its escape."""
    text = _as_text(value)[:limit + 1]
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return _capped("\n".join(_visible(part) for part in text.split("\n")), limit)
