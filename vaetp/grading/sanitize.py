"""`SanitizeOutputs`: what a student made becomes safe to open in the instructor's browser.

The Formgrader and the feedback pages are nbconvert renderings of the autograded notebook,
opened in a browser that may hold the instructor's Jupyter session. A student's display
output or markdown cell could carry a script (`<img src=x onerror=...>`, `<script>`, a
`javascript:` link, an SVG with a script, `application/javascript`), which would then run
with the instructor's rights. Safety is decided on what is rendered, never on the source: a
source that looks harmless to one markdown parser can render to live HTML in another (e.g. an
`<img onerror>` between two `$` is a code span without the maths rules, raw HTML with them).
This preprocessor, the last word on every cell before the notebook is saved:

- renders every markdown cell with nbconvert's own markdown pipeline (`MarkdownWithMath` and
  `IPythonRenderer`, as `HTMLExporter.markdown2html` does for the Formgrader and the
  feedback), cleans the HTML with nh3 and stores it inert: one HTML block that markdown passes
  through unchanged and that holds no `$` or backslash for the maths rules. Each formula is
  stored as presentation MathML (`mathml`), which the browser lays out with no script, offline,
  under the feedback pages' no-script policy. The cleaned HTML must clean to itself, and the
  stored block is rendered once more and must come out unchanged; if either fails, the cell is
  stored as escaped text;
- keeps only these output types: text/plain, text/latex (escaped by every template),
  image/png, image/jpeg, image/gif, and text/html (cleaned). A text/markdown output is
  rendered and cleaned like a markdown cell and stored as text/html; an SVG is stored as an
  `<img>` of it (a browser runs no script in an image); any other type (JavaScript, widgets,
  ...) is replaced by a one-line note;
- cleans HTML with nh3 (the Rust `ammonia` allowlist sanitizer, whose parser is a browser's,
  html5ever): no script, no event handler, no iframe/object/embed/form/style/base/meta, links
  and images only to http(s), mailto, attachments or inline raster images;
- cleans raw cells, keeps only raster images among cell attachments, only plain words among
  cell tags, and drops notebook metadata other than the kernel's and the grader's.

It runs after nbgrader's `SaveAutoGrades` (nbgrader_config.py): nbgrader tells an unanswered
answer cell from its checksum, which the stored rendering would change.
"""

from __future__ import annotations

import base64
import functools
import html
import re
import time
from collections import Counter
from typing import Any

import nh3
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool, Float, Int

TEXT_MIMES = {"text/plain", "text/latex"}
IMAGE_MIMES = {"image/png", "image/jpeg", "image/gif"}
URL_SCHEMES = {"http", "https", "mailto", "attachment", "data"}
URL_ATTRIBUTES = {"href", "src", "cite", "longdesc", "srcset", "action", "formaction", "poster",
                  "background", "xlink:href"}
#: Presentation MathML, as maths is stored (see `mathml`): elements that lay out symbols only.
#: No `semantics`/`annotation-xml` (HTML inside maths), `maction`, `mglyph` or `malignmark`
#: (the known mutation-XSS vectors), and no `href`, `style` or event attribute on any of them.
MATHML_ATTRIBUTES: dict[str, set[str]] = {
    "math": {"display"}, "mi": {"mathvariant"}, "mtext": {"mathvariant"}, "mn": set(), "ms": set(),
    "mo": {"accent", "fence", "form", "largeop", "lspace", "maxsize", "minsize",
           "movablelimits", "rspace", "separator", "stretchy", "symmetric"},
    "mrow": set(), "msub": set(), "msup": set(), "msubsup": set(), "msqrt": set(),
    "mroot": set(), "mfrac": {"linethickness"}, "mover": {"accent"},
    "munder": {"accentunder"}, "munderover": {"accent", "accentunder"},
    "mspace": {"width", "height", "depth"}, "mpadded": {"width", "height", "depth", "lspace",
                                                         "voffset"},
    "mphantom": set(), "menclose": {"notation"},
    "mstyle": {"displaystyle", "scriptlevel", "mathcolor"},
    "mtable": {"columnalign", "rowspacing", "columnspacing"}, "mtr": set(),
    "mtd": {"columnalign"},
}
TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"} | set(MATHML_ATTRIBUTES)
ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "align", "class", "lang", "dir", "id"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan", "scope"},
    "ol": {"start", "type"}, "col": {"span"}, "colgroup": {"span"},
    **{tag: names for tag, names in MATHML_ATTRIBUTES.items() if names},
}
#: The longest TeX formula turned into MathML; a longer one is shown as its TeX text.
MAX_FORMULA_CHARS = 2_000
#: MathML is about 16 times its TeX, and nbconvert parses every page it renders again (the
#: Formgrader on each view): past this much MathML in a cell, its formulas stay as TeX text
#: (a red-team review: 20 cells of small formulas made a 5.7 MB Formgrader page, 30 s to
#: render). The TP's own longest cell has about 5,000 characters of MathML.
MAX_CELL_MATHML_CHARS = 50_000
BLOCKED = "[output removed by the grader: {mime} is not shown, for the reader's safety]"
_GAP = r"[\s\\\x00-\x1f]*"  # spaces, control characters, markdown's backslash escapes
_DANGEROUS_TEXT = re.compile(_GAP.join("javascript:") + "|" + _GAP.join("vbscript:"), re.I)


def _url_ok(value: str) -> bool:
    value = html.unescape(value).strip()
    # nbconvert's templates strip a `files/` prefix from links and images (strip_files_prefix):
    # judge the URL the page will hold (a red-team review: `/files/data:text/html;...`)
    value = re.sub(r"^[\s\x00-\x1f]*/?files/", "", value)
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):", re.sub(r"[\s\x00-\x1f]", "", value))
    if scheme is None:
        return True  # relative link or anchor
    name = scheme.group(1).lower()
    if name == "data":
        return bool(re.match(r"^data:image/(png|jpeg|gif)[;,]", value, re.I))
    return name in URL_SCHEMES


def _valid_text(text: str) -> str:
    """The text with any lone surrogate (valid JSON, `\\ud800`, not encodable) replaced."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean_html(text: str) -> str:
    """The allowlist cleaning of an HTML fragment."""
    text = _valid_text(text)
    return nh3.clean(text, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer", strip_comments=True,
                     attribute_filter=lambda tag, attr, value: (
                         value if attr not in URL_ATTRIBUTES or _url_ok(value) else None))


def inert_html(cleaned: str) -> str:
    """Cleaned HTML that no later step parses again: one HTML block (no blank line, so markdown
    leaves it alone), no `$` for the maths rules, no backslash for markdown's escapes or a LaTeX
    environment, no script URL left even as text."""
    cleaned = _DANGEROUS_TEXT.sub("blocked:", clean_html(cleaned))
    cleaned = re.sub(r"\n\s*\n", "\n", cleaned).replace("$", "&#36;").replace("\\", "&#92;")
    return "<div>\n" + cleaned.strip() + "\n</div>"


def mathml(tex: str, display: bool) -> str | None:
    """A TeX formula as presentation MathML (latex2mathml), which browsers lay out with no
    script: maths reads as maths in the Formgrader, in a feedback page whose policy runs no
    script, and in JupyterLab's HTML viewer, all offline. None if the formula cannot be
    converted (then the reader sees its TeX text). What comes out is cleaned with the rest of
    the cell: latex2mathml copies `\\text{...}` and `\\href` into its output as they are."""
    if len(tex) > MAX_FORMULA_CHARS:
        return None
    from latex2mathml.converter import convert

    try:
        converted = convert(_for_latex2mathml(tex), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - unknown commands, unbalanced braces, deep nesting
        return None
    # MathML elements only (what \\text or \\href copied in is dropped here, silently: the
    # reader is told about HTML the student wrote, not about this), and no namespace attribute.
    return nh3.clean(converted, tags=set(MATHML_ATTRIBUTES),
                     attributes={t: a for t, a in MATHML_ATTRIBUTES.items() if a},
                     url_schemes=set(), strip_comments=True)


_SIZED_DELIMITER = re.compile(r"\\[bB]igg?[lrm]?(?=\\)")  # \big\| (latex2mathml: "\|")
_TEXT_ARGUMENT = re.compile(r"(\\(?:text|texttt|textrm|textit|textbf|mathrm|mathtt)\{)"
                            r"((?:\\.|[^{}\\])*)\}")


def _for_latex2mathml(tex: str) -> str:
    """The TeX as latex2mathml reads it right: no size on a delimiter written as a command, and
    `\\_`, `\\%`, `\\&`, `\\#`, `\\$` in text arguments as the characters they stand for."""
    tex = _SIZED_DELIMITER.sub("", tex)
    return _TEXT_ARGUMENT.sub(
        lambda m: m.group(1) + re.sub(r"\\([_%&#$])", r"\1", m.group(2)) + "}", tex)


def _mathml_renderer():
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class MathMLRenderer(IPythonRenderer):
        """nbconvert's renderer, with each formula written as MathML instead of TeX text (a LaTeX
        environment outside `$$`, e.g. `\\begin{align}`, stays as its TeX text: latex2mathml
        lays out few of them)."""

        mathml_left = MAX_CELL_MATHML_CHARS

        def _formula(self, body: str, display: bool) -> str | None:
            if self.mathml_left <= 0:  # the cell's MathML is spent: TeX text from here
                return None
            converted = mathml(body, display)
            if converted is not None:
                self.mathml_left -= len(converted)
            return converted

        def block_math(self, body: str) -> str:
            return self._formula(body, True) or super().block_math(body)

        def inline_math(self, body: str) -> str:
            return self._formula(body, False) or super().inline_math(body)

    return MathMLRenderer


def render_markdown(source: str, attachments: dict | None = None, maths_as_mathml: bool = False
                    ) -> str:
    """The HTML nbconvert makes of a markdown cell for the Formgrader and the feedback
    (`HTMLExporter.markdown2html`: nbconvert's maths rules, raw HTML passed through, and
    `javascript:` links allowed). `maths_as_mathml`: the same, each formula as MathML (`mathml`),
    as the cell is stored."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer_class = _mathml_renderer() if maths_as_mathml else IPythonRenderer
    renderer = renderer_class(escape=False, attachments=attachments or {},
                              anchor_link_text="\u00b6")
    return MarkdownWithMath(renderer=renderer).render(source)


def _escaped(source: str) -> str:
    return "<div>\n<pre>" + html.escape(source).replace("$", "&#36;").replace(
        "\\", "&#92;").replace("\n", "&#10;") + "</pre>\n</div>"


def _stays_as_stored(block: str) -> bool:
    """nbconvert renders the stored block as exactly itself: what the browser gets is the
    cleaned HTML, nothing parsed out of it again."""
    try:
        return render_markdown(block).strip() == block.strip()
    except Exception:  # noqa: BLE001
        return False


def _elements(text: str) -> list[str]:
    """The tags and attributes of an HTML fragment, to tell whether cleaning removed any (for
    the note to the reader only: safety never rests on this parser)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Lister(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append(tag)
            found.extend(f"{tag}@{name}" for name, _ in attrs)

    Lister(convert_charrefs=True).feed(text)
    return found


#: The longest markdown (cell or output) that is rendered; a longer one is stored as escaped
#: text. nbconvert's maths rules take time quadratic in some inputs (a red-team review: 47 s for
#: 144 KB of `\\begin{a}`), and this step runs in the grader's own process.
MAX_RENDERED_CHARS = 20_000


def sanitize_markdown(source: str, attachments: dict | None = None, render: bool = True,
                      maths: bool = True) -> str:
    """A markdown cell as stored in the autograded notebook: nbconvert's rendering of it,
    cleaned by nh3, as one inert HTML block (see the module's doc); a note says when the
    cleaning removed something. Too long, or `render=False` (the notebook's rendering time is
    spent): the source as escaped, inert text. `maths=False`: formulas as TeX text, not MathML
    (the notebook's MathML is spent)."""
    source = _valid_text(source)
    if not render or len(source) > MAX_RENDERED_CHARS:
        return _escaped(source)
    if not attachments:  # most markdown cells are the release's own, in every submission
        return _sanitized(source, maths)
    return _sanitize(source, attachments, maths)


@functools.lru_cache(maxsize=4096)
def _sanitized(source: str, maths: bool = True) -> str:
    return _sanitize(source, None, maths)


def _sanitize(source: str, attachments: dict | None, maths: bool = True) -> str:
    try:
        rendered = render_markdown(source, attachments, maths_as_mathml=maths)
    except Exception:  # noqa: BLE001 - what cannot be rendered is shown as plain text
        rendered = "<pre>" + html.escape(source) + "</pre>"
    cleaned = clean_html(rendered)
    block = inert_html(cleaned)
    if Counter(_elements(rendered)) - Counter(_elements(cleaned)):
        block = block[:-len("</div>")] + (
            "<p><em>(Some HTML in this cell was removed by the grader.)</em></p>\n</div>")
    if not (_cleaned_as_itself(cleaned) and _stays_as_stored(block)):
        block = _escaped(source)
    return block


def _cleaned_as_itself(cleaned: str) -> bool:
    """Cleaning the cleaned HTML again changes nothing: the browser parses it as nh3 did (HTML
    that mutates when parsed again is how mutation XSS gets through a sanitizer)."""
    return clean_html(cleaned) == cleaned


def svg_as_image(svg: str) -> str:
    """An SVG shown as an image: a browser runs no script and loads nothing from an image."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img src="data:image/svg+xml;base64,{data}" alt="SVG figure">'


_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_TAG = re.compile(r"^[\w.\-]{1,64}$")
CELL_METADATA = {"nbgrader", "tags", "deletable", "editable", "collapsed", "scrolled", "jupyter",
                 "trusted"}


class SanitizeOutputs(Preprocessor):
    """Every output, markdown and raw cell of the notebook made safe for a browser."""

    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off by default
    render_seconds = Float(
        20.0, help="Seconds of markdown rendering per notebook; past that, the notebook's other "
                   "markdown cells and outputs are stored as escaped text (still safe, not "
                   "rendered), so that no notebook can hold the grader up."
    ).tag(config=True)
    mathml_chars = Int(
        1_000_000, help="Characters of markdown with MathML per notebook (cells with formulas "
                        "counted whole); past that, formulas are stored as TeX text, so that no "
                        "notebook makes the Formgrader's page slow. The TP's own cells take about "
                        "250,000."
    ).tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        attachments = cell.get("attachments")
        if attachments:
            cell.attachments = {
                name: {m: v for m, v in bundle.items()
                       if m in IMAGE_MIMES and isinstance(v, str) and _BASE64.match(v)}
                for name, bundle in attachments.items() if isinstance(bundle, dict)}
        if cell.cell_type == "markdown":
            cell.source = self._markdown(cell.source, cell.get("attachments"))
        elif cell.cell_type == "raw":
            cell.source = inert_html(cell.source)
            if str(cell.metadata.get("raw_mimetype", "")).lower() not in ("", "text/html"):
                del cell.metadata["raw_mimetype"]
        elif cell.cell_type == "code":
            cell.outputs = [self._output(o) for o in cell.get("outputs", [])]
            if not isinstance(cell.get("execution_count"), (int, type(None))):
                cell.execution_count = None  # printed as is in the prompt ("In [...]")
        for key in list(cell.metadata):
            if key not in CELL_METADATA and key != "raw_mimetype":
                del cell.metadata[key]
        tags = cell.metadata.get("tags")
        if tags is not None:
            cell.metadata.tags = [t for t in tags if isinstance(t, str) and _TAG.match(t)] \
                if isinstance(tags, list) else []
        return cell, resources

    def _markdown(self, source: str, attachments: dict | None = None) -> str:
        """`sanitize_markdown`, within the notebook's rendering time."""
        started = time.monotonic()
        block = sanitize_markdown(source, attachments, render=self._render_left > 0,
                                  maths=self._mathml_left > 0)
        self._render_left -= time.monotonic() - started
        if "<math" in block:
            self._mathml_left -= len(block)
        return block

    def preprocess(self, nb: NotebookNode, resources: Any):
        self._render_left = float(self.render_seconds)
        self._mathml_left = int(self.mathml_chars)
        for key in list(nb.metadata):
            if key not in ("kernelspec", "language_info", "nbgrader", "vaetp_grading"):
                del nb.metadata[key]  # e.g. `title`, which lands in the page's <title>
        return super().preprocess(nb, resources)

    def _output(self, output: NotebookNode) -> NotebookNode:
        if "execution_count" in output and not isinstance(output.execution_count, (int, type(None))):
            output.execution_count = None
        if output.get("output_type") not in ("display_data", "execute_result"):
            return output  # stream and error text is escaped by every nbconvert template
        data = output.get("data", {})
        kept: dict[str, Any] = {}
        for mime, value in data.items():
            text = "".join(value) if isinstance(value, list) else value
            if not isinstance(text, str):
                continue
            if mime in TEXT_MIMES or mime in IMAGE_MIMES:
                kept[mime] = text
            elif mime == "text/html":
                kept[mime] = _DANGEROUS_TEXT.sub("blocked:", clean_html(text))  # always
            elif mime == "text/markdown" and "text/html" not in data:
                kept["text/html"] = self._markdown(text)
            elif mime == "image/svg+xml" and "text/html" not in data:
                kept["text/html"] = svg_as_image(text)
        for mime in IMAGE_MIMES & set(kept):
            if not _BASE64.match(kept[mime]):
                del kept[mime]
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
