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
- renders each markdown cell the way nbconvert does; if the result holds anything the
  allowlist would remove, the cell's source is replaced by the cleaned HTML (ordinary
  markdown, maths included, is left as the student wrote it);
- cleans raw cells, and keeps only raster images among cell attachments.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import nh3
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

TEXT_MIMES = {"text/plain", "text/latex"}
IMAGE_MIMES = {"image/png", "image/jpeg", "image/gif"}
HTML_MIMES = {"text/html", "text/markdown"}
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
_DANGEROUS_TEXT = re.compile(r"j\s*a\s*v\s*a\s*s\s*c\s*r\s*i\s*p\s*t\s*:|vbscript\s*:", re.I)


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


class _Audit(HTMLParser):
    """Finds anything in rendered HTML that the allowlist would remove."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.unsafe: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TAGS:
            self.unsafe.append(f"<{tag}>")
            return
        allowed = ATTRIBUTES.get(tag, set()) | ATTRIBUTES["*"]
        for name, value in attrs:
            if name not in allowed:
                self.unsafe.append(f"{tag}[{name}]")
            elif name in URL_ATTRIBUTES and value is not None and not _url_ok(value):
                self.unsafe.append(f"{tag}[{name}={value[:30]}]")

    handle_startendtag = handle_starttag

    def handle_comment(self, data: str) -> None:
        self.unsafe.append("<!-- -->")

    def handle_decl(self, decl: str) -> None:
        self.unsafe.append("<!...>")

    def handle_pi(self, data: str) -> None:
        self.unsafe.append("<?...>")


def _without_data_images(rendered_html: str) -> str:
    """Attachments render as data: URLs of their own MIME type; raster ones are fine."""
    return re.sub(r'src="data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*"', 'src="#"',
                  rendered_html)


def unsafe_parts(rendered_html: str) -> list[str]:
    """What the allowlist would remove from this HTML (empty: it is safe as it is)."""
    audit = _Audit()
    audit.feed(rendered_html)
    audit.close()
    if _DANGEROUS_TEXT.search(html.unescape(rendered_html)):
        audit.unsafe.append("javascript: text")  # e.g. MathJax's \href{javascript:...}
    return audit.unsafe


def _markdown_html(source: str, attachments: dict | None = None) -> str:
    """The HTML nbconvert makes of a markdown cell (its exporters allow `javascript:` links)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=False, attachments=attachments or {})
    return MarkdownWithMath(renderer=renderer).render(source)


def sanitize_markdown(source: str, attachments: dict | None = None) -> str:
    """The markdown unchanged if it renders to safe HTML; else the cleaned rendering."""
    try:
        rendered = _markdown_html(source, attachments)
    except Exception:  # noqa: BLE001 - what cannot be rendered is shown as plain text
        return "<pre>" + html.escape(source) + "</pre>"
    if not unsafe_parts(_without_data_images(rendered)) and not _DANGEROUS_TEXT.search(source):
        return source
    cleaned = _DANGEROUS_TEXT.sub("blocked:", clean_html(rendered))
    return cleaned + "\n\n*(HTML in this cell was removed by the grader.)*"


class SanitizeOutputs(Preprocessor):
    """Every output, markdown and raw cell of the notebook made safe for a browser."""

    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off by default

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        if cell.cell_type == "markdown":
            cell.source = sanitize_markdown(cell.source, cell.get("attachments"))
        elif cell.cell_type == "raw":
            cell.source = _DANGEROUS_TEXT.sub("blocked:", clean_html(cell.source))
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
                kept[mime] = text if not unsafe_parts(text) else _DANGEROUS_TEXT.sub(
                    "blocked:", clean_html(text))
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
