"""`SanitizeOutputs`: what a student made becomes safe to open in the instructor's browser.

The Formgrader and the feedback pages are nbconvert renderings of the autograded notebook,
opened in a browser that may hold the instructor's Jupyter session. A student's display
output or markdown cell could carry a script (`<img src=x onerror=...>`, `<script>`, a
`javascript:` link, an SVG with a script, `application/javascript`), which would then run
with the instructor's rights. This preprocessor, the last word on every cell before the
notebook is saved:

- keeps only these output types: text/plain, text/html and text/markdown (cleaned),
  text/latex, image/png, image/jpeg, image/gif; any other (JavaScript, SVG, widgets, ...) is
  replaced by a one-line note;
- cleans HTML with nh3 (the Rust `ammonia` allowlist sanitizer): no script, no event
  handler, no iframe/object/embed/form/style, links and images only to http(s), mailto,
  attachments or inline raster images;
- keeps a markdown cell (or markdown output) as written only when it is plain markdown: no raw
  HTML at all, links and images only to allowed URLs, no script URL however spelled; any
  other is replaced by nbconvert's rendering of it, cleaned by nh3 and made inert (one HTML
  block that markdown and MathJax do not parse again). HTML is never judged safe by a parser
  of our own: it always goes through nh3, whose parser is a browser's (html5ever);
- cleans raw cells, and keeps only raster images among cell attachments.
"""

from __future__ import annotations

import html
import re
from typing import Any

import nh3
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

TEXT_MIMES = {"text/plain", "text/latex"}
IMAGE_MIMES = {"image/png", "image/jpeg", "image/gif"}
URL_SCHEMES = {"http", "https", "mailto", "attachment", "data"}
URL_ATTRIBUTES = {"href", "src", "cite", "longdesc", "srcset", "action", "formaction", "poster",
                  "background", "xlink:href"}
TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "align", "class", "lang", "dir", "id"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan", "scope"},
    "ol": {"start", "type"}, "col": {"span"}, "colgroup": {"span"},
}
BLOCKED = "[output removed by the grader: {mime} is not shown, for the reader's safety]"
_GAP = r"[\s\\\x00-\x1f]*"  # spaces, control characters, markdown's backslash escapes
_DANGEROUS_TEXT = re.compile(_GAP.join("javascript:") + "|" + _GAP.join("vbscript:"), re.I)


def _url_ok(value: str) -> bool:
    value = html.unescape(value).strip()
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):", re.sub(r"[\s\x00-\x1f]", "", value))
    if scheme is None:
        return True  # relative link or anchor
    name = scheme.group(1).lower()
    if name == "data":
        return bool(re.match(r"^data:image/(png|jpeg|gif)[;,]", value, re.I))
    return name in URL_SCHEMES


def clean_html(text: str) -> str:
    """The allowlist cleaning of an HTML fragment."""
    return nh3.clean(text, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer", strip_comments=True,
                     attribute_filter=lambda tag, attr, value: (
                         value if attr not in URL_ATTRIBUTES or _url_ok(value) else None))


def _dangerous(text: str) -> bool:
    """A script URL anywhere in the text, however spelled (entities, escapes, spaces)."""
    return bool(_DANGEROUS_TEXT.search(html.unescape(text)))


def _tokens_safe(tokens: list[dict[str, Any]]) -> bool:
    for token in tokens:
        if token.get("type") in ("block_html", "inline_html"):
            return False
        url = (token.get("attrs") or {}).get("url")
        if url is not None and not _url_ok(url):
            return False
        if not _tokens_safe(token.get("children") or []):
            return False
    return True


def plain_markdown(source: str) -> bool:
    """True when the markdown holds no raw HTML at all and no link or image outside the
    allowlist: nbconvert then renders nothing but markdown's own tags, so it is kept verbatim.
    (Parsed without the maths plugin, so text inside $...$ counts too: stricter, never looser.)"""
    import mistune

    parse = mistune.create_markdown(renderer=None, plugins=["strikethrough", "table", "url"])
    return _tokens_safe(parse(source)) and not _dangerous(source)


def inert_html(rendered: str) -> str:
    """Cleaned HTML that no later step parses again: one HTML block (no blank line, so markdown
    leaves it alone), no `$` for MathJax, no backslash for markdown's escapes."""
    cleaned = _DANGEROUS_TEXT.sub("blocked:", clean_html(rendered))
    cleaned = re.sub(r"\n\s*\n", "\n", cleaned).replace("$", "&#36;").replace("\\", "&#92;")
    return "<div>\n" + cleaned.strip() + "\n</div>"


def _markdown_html(source: str, attachments: dict | None = None) -> str:
    """The HTML nbconvert makes of a markdown cell (its exporters allow `javascript:` links)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=False, attachments=attachments or {})
    return MarkdownWithMath(renderer=renderer).render(source)


def sanitize_markdown(source: str, attachments: dict | None = None) -> str:
    """The markdown unchanged if it is plain markdown; else its rendering, cleaned and inert."""
    if plain_markdown(source):
        return source
    try:
        rendered = _markdown_html(source, attachments)
    except Exception:  # noqa: BLE001 - what cannot be rendered is shown as plain text
        rendered = "<pre>" + html.escape(source) + "</pre>"
    return inert_html(rendered) + "\n\n*(HTML in this cell was removed by the grader.)*"


class SanitizeOutputs(Preprocessor):
    """Every output, markdown and raw cell of the notebook made safe for a browser."""

    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off by default

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        if cell.cell_type == "markdown":
            cell.source = sanitize_markdown(cell.source, cell.get("attachments"))
        elif cell.cell_type == "raw":
            cell.source = inert_html(cell.source)
        elif cell.cell_type == "code":
            cell.outputs = [self._output(o) for o in cell.get("outputs", [])]
        attachments = cell.get("attachments")
        if attachments:
            cell.attachments = {name: {m: v for m, v in bundle.items() if m in IMAGE_MIMES}
                                for name, bundle in attachments.items()}
        return cell, resources

    def preprocess(self, nb: NotebookNode, resources: Any):
        for key in list(nb.metadata):
            if key not in ("kernelspec", "language_info", "nbgrader", "vaetp_grading"):
                del nb.metadata[key]  # e.g. `title`, which lands in the page's <title>
        return super().preprocess(nb, resources)

    def _output(self, output: NotebookNode) -> NotebookNode:
        if output.get("output_type") not in ("display_data", "execute_result"):
            return output  # stream and error text is escaped by every nbconvert template
        data = output.get("data", {})
        kept: dict[str, Any] = {}
        for mime, value in data.items():
            text = "".join(value) if isinstance(value, list) else value
            if mime in TEXT_MIMES or mime in IMAGE_MIMES:
                kept[mime] = text
            elif mime == "text/html" and isinstance(text, str):
                kept[mime] = _DANGEROUS_TEXT.sub("blocked:", clean_html(text))  # always
            elif mime == "text/markdown" and isinstance(text, str):
                kept[mime] = sanitize_markdown(text)
        if not kept or set(kept) == {"text/plain"} and set(data) - {"text/plain"}:
            removed = ", ".join(sorted(set(data) - set(kept))) or "this output"
            kept = {"text/plain": BLOCKED.format(mime=removed)}
        output.data = kept
        metadata = output.get("metadata", {})
        output.metadata = {mime: {k: v for k, v in meta.items()
                                  if k in ("width", "height") and isinstance(v, (int, float))}
                           for mime, meta in metadata.items()
                           if mime in kept and isinstance(meta, dict)}
        return output
