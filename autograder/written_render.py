"""Student text as safe, offline HTML: markdown, LaTeX math, code, embedded images.

Everything a student wrote is escaped: raw HTML shows as text, links are inert (their address is
shown, never followed), and images appear only when embedded in the notebook (cell attachments or
data: URIs of raster image types). Math is drawn here, with matplotlib's mathtext, into PNG data
URIs; what mathtext cannot draw is shown as its LaTeX source.
"""
import base64
import binascii
import html
import io
import re
from functools import lru_cache

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_IMAGE_BYTES = 4 * 1024 * 1024
MAX_MATH_CHARS = 400
MAX_TEXT_CHARS = 200_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_DATA_URI = re.compile(r"^data:(image/[a-z+.-]+);base64,([A-Za-z0-9+/=\s]+)$", re.IGNORECASE)


def clean_text(text) -> str:
    """Control and bidirectional-override characters removed; length capped."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + "\n\n[... cut: the answer is longer than this page shows]"
    return text


def escape(text) -> str:
    """Text made safe for HTML: control characters removed, length capped, quotes escaped."""
    return html.escape(clean_text(text), quote=True)


def image_data_uri(mime: str, payload) -> str:
    """A data: URI for an embedded raster image, or "" when it is not one."""
    mime = str(mime).lower().strip()
    if mime not in IMAGE_TYPES:
        return ""
    if isinstance(payload, list):
        payload = "".join(map(str, payload))
    try:
        raw = base64.b64decode("".join(str(payload).split()), validate=True)
    except (binascii.Error, ValueError):
        return ""
    if not raw or len(raw) > MAX_IMAGE_BYTES:
        return ""
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


# LaTeX that mathtext spells differently (tried only after the expression as written fails)
_ALIASES = [(re.compile(r"\\(ge|le)(?![a-zA-Z])"), r"\\\1q"), (re.compile(r"\\(lVert|rVert)(?![a-zA-Z])"), r"\\Vert"),
            (re.compile(r"\\(operatorname|textrm|textit|textbf)(?![a-zA-Z])"), r"\\mathrm"),
            (re.compile(r"\\(left|right|big|Big|bigg|Bigg)(?![a-zA-Z])"), "")]


def _aliased(expression: str) -> str:
    for pattern, replacement in _ALIASES:
        expression = pattern.sub(replacement, expression)
    return expression


@lru_cache(maxsize=4096)
def _math_png(expression: str, display: bool) -> str:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import mathtext
    buffer = io.BytesIO()
    size = 13 if display else 11
    from matplotlib.font_manager import FontProperties
    mathtext.math_to_image(f"${expression}$", buffer, prop=FontProperties(size=size), dpi=140, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_math(expression: str, display: bool) -> str:
    """A LaTeX expression as KaTeX HTML; its source in <code> when it is too long or does not render."""
    expression = clean_text(expression).strip()
    source = f"$${expression}$$" if display else f"${expression}$"
    fallback = f'<code class="math-source">{escape(source)}</code>'
    one_line = " ".join(expression.split())
    if not one_line or len(one_line) > MAX_MATH_CHARS:
        return fallback
    try:
        uri = _math_png(one_line, display)
    except Exception:  # noqa: BLE001 - LaTeX that mathtext cannot draw is shown as source
        try:
            uri = _math_png(_aliased(one_line), display)
        except Exception:  # noqa: BLE001 - neither form draws: the source is shown instead
            return fallback
    tag = f'<img class="math" src="{uri}" alt="{escape(source)}" title="{escape(source)}">'
    return f'<div class="math-display">{tag}</div>' if display else tag


def _link_open(self, tokens, idx, options, env):
    href = tokens[idx].attrGet("href") or ""
    return f'<span class="inert-link" title="link, not followed: {escape(href)}">'


def _link_close(self, tokens, idx, options, env):
    href = ""
    for token in reversed(tokens[:idx]):
        if token.type == "link_open":
            href = token.attrGet("href") or ""
            break
    return f'</span> <span class="link-target">({escape(href)})</span>'


def _image(self, tokens, idx, options, env):
    token = tokens[idx]
    src = (token.attrGet("src") or "").strip()
    alt = self.renderInlineAsText(token.children or [], options, env)
    uri = ""
    if src.startswith("attachment:"):
        bundle = (env.get("attachments") or {}).get(src[len("attachment:"):], {})
        if isinstance(bundle, dict):
            uri = next((u for mime, data in bundle.items() if (u := image_data_uri(mime, data))), "")
    elif (match := _DATA_URI.match(src)) is not None:
        uri = image_data_uri(match.group(1), match.group(2))
    if not uri:
        return (f'<span class="blocked">[image not shown: {escape(src[:80])}; '
                'only images embedded in the notebook are shown]</span>')
    return f'<img class="student-image" src="{uri}" alt="{escape(alt)}">'


def _math_inline(self, tokens, idx, options, env):
    return render_math(tokens[idx].content, display=False)


def _math_block(self, tokens, idx, options, env):
    return render_math(tokens[idx].content, display=True)


@lru_cache(None)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")
    md.use(dollarmath_plugin, allow_space=True, double_inline=True)
    md.validateLink = lambda url: True  # every link is rendered inert, so any address may be shown
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("image", _image)
    md.add_render_rule("math_inline", _math_inline)
    md.add_render_rule("math_inline_double", _math_block)
    md.add_render_rule("math_block", _math_block)
    md.add_render_rule("math_block_label", _math_block)
    return md


def markdown(text, attachments=None) -> str:
    """HTML for markdown a student (or the instructor) wrote."""
    return _parser().render(clean_text(text), {"attachments": attachments or {}})


def code_block(source, language="python") -> str:
    """`source` as an escaped HTML code block."""
    return f'<pre class="code"><code data-language="{escape(language)}">{escape(source)}</code></pre>'


def outputs(cell) -> str:
    """A code cell's outputs: images (embedded rasters only) and text, escaped."""
    parts = []
    for output in cell.get("outputs", [])[:20]:
        data = output.get("data", {}) if isinstance(output, dict) else {}
        image = next((u for mime in IMAGE_TYPES if mime in data and (u := image_data_uri(mime, data[mime]))), "")
        if image:
            parts.append(f'<img class="student-image" src="{image}" alt="output image">')
        elif "text/plain" in data or output.get("text"):
            text = data.get("text/plain", output.get("text", ""))
            text = "".join(text) if isinstance(text, list) else str(text)
            parts.append(f'<pre class="output">{escape(text[:5000])}</pre>')
    return "".join(parts)
