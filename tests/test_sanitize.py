"""What a student made is safe to open in the instructor's browser (Formgrader, feedback).

The payloads are put where a student can put them (a hand-graded answer, a markdown output, an
error message, cell metadata, ...); the sanitized notebook is then rendered by nbconvert's real
exporter with the feedback and Formgrader templates of nbgrader, and the assertions are on that
HTML: safety is judged on what the browser gets, not on the source."""

from __future__ import annotations

import base64
import functools
import html
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from course_paths import MASTER, STUDENT

from vaetp.grading.sanitize import SanitizeOutputs, render_markdown, sanitize_markdown

JS = "alert(document.domain)"  # no "=": valid as an unquoted attribute value
# Payloads in markdown, by kind. Each would run JS, leave the page, or load something if it
# came out as live HTML.
MARKDOWN_PAYLOADS = {
    # parser differentials: maths first (nbconvert) or code spans first (a plain parser)
    "maths-code-span": f"$`$<img src=x onerror={JS}>$`$",
    "maths-around-tag": f"a $x` b$ <img src=x onerror={JS}> `c$",
    "maths-display": f"$$\n<img src=x onerror={JS}>\n$$",
    "maths-environment": f"\\begin{{equation}}<img src=x onerror={JS}>\\end{{equation}}",
    "maths-href": f"$\\href{{javascript:{JS}}}{{x}}$",
    # a formula's text is copied into the MathML as it is (latex2mathml), then cleaned
    "maths-text-tag": f"$\\text{{<img src=x onerror={JS}>}}$",
    "maths-text-quotes": f'$\\text{{" onmouseover="{JS}}}$',
    "maths-class-style": "$\\class{hidden}{x} \\style{position:fixed}{y} \\color{red}{z}$",
    "maths-in-attribute": f'<a title="$x$" href="javascript:{JS}">$\\mu$</a>',
    # nbconvert's templates strip `files/` from links: this one would become a data: URL
    "files-prefix-data": "[x](/files/data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "code-span": f"`<img src=x onerror={JS}>` then `` ` ``<img src=x onerror={JS}>",
    "code-block": f"```html\n<script>{JS}</script>\n```",
    # raw HTML blocks and inline HTML
    "raw-block": f"<div>\n<img src=x onerror={JS}>\n</div>",
    "script": f"<script>{JS}</script>",
    "details-ontoggle": f"<details open ontoggle={JS}><summary>x</summary>y</details>",
    "comment-then-script": f"<!-- notes --><script>{JS}</script>",
    "cdata": f"<![CDATA[><img src=x onerror={JS}>]]>",
    "unclosed-tag": f"my plot: <img src=x onerror={JS}//",
    "noscript-mxss": f'<noscript><p title="</noscript><img src=x onerror={JS}>">',
    "style": "<style>body{display:none}</style>",
    "textarea-breakout": f"<textarea></textarea><img src=x onerror={JS}>",
    # HTML entities
    "entity-scheme": f"[x](&#106;avascript:{JS})",
    "entity-tab": f"[x](jav&#x09;ascript:{JS})",
    "entity-colon": f'<a href="&#x6A;avascript&colon;{JS}">x</a>',
    "escaped-colon": f"<!-- x -->\n\n$$\n\n[Click](javascript\\:{JS})\n\n$$",
    # nested lists and quotes
    "nested-list": f"- a\n  - <img src=x onerror={JS}>\n    1. $`$<script>{JS}</script>$`$",
    "quote-list": f"> - <iframe srcdoc='<script>{JS}</script>'></iframe>",
    # javascript: and other script URLs
    "js-link": f"[click](javascript:{JS})",
    "js-link-spaces": f"[click](  JaVaScRiPt:{JS})",
    "js-autolink": f"<javascript:{JS}>",
    "js-reference": f"[y][x]\n\n[x]: javascript:{JS}",
    "js-image": f"![x](javascript:{JS})",
    "vbscript": "<a href='vbscript:x'>x</a>",
    "data-html": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    # SVG and MathML
    "svg-onload": f"<svg onload={JS}></svg>",
    "svg-script": f"<svg><script>{JS}</script></svg>",
    "svg-xlink": f'<svg><a xlink:href="javascript:{JS}"><text>x</text></a></svg>',
    "svg-style-mxss": f"<svg><style><img src=x onerror={JS}></style></svg>",
    "math-href": f'<math href="javascript:{JS}">x</math>',
    "mathml-mxss": f"<math><mtext><table><mglyph><style><img src=x onerror={JS}>",
    # frames, page-wide tags
    "iframe-srcdoc": f'<iframe srcdoc="&lt;script&gt;{JS}&lt;/script&gt;"></iframe>',
    "iframe-src": f"<iframe src='javascript:{JS}'></iframe>",
    "object": "<object data='x.swf'></object><embed src='x.swf'>",
    "base": '<base href="https://evil.example/">',
    "meta-refresh": f'<meta http-equiv="refresh" content="0;url=javascript:{JS}">',
    "link-css": '<link rel="stylesheet" href="https://evil.example/x.css">',
    "form": f"<form action='/api/contents'><button formaction='javascript:{JS}'>x</button></form>",
}

# Maths is stored as presentation MathML, which browsers lay out with no script; the MathML
# elements that can hold HTML or act (annotation-xml, maction) or that mutation-XSS payloads use
# (mglyph, malignmark) are not.
FORBIDDEN_TAGS = {"script", "iframe", "object", "embed", "base", "meta", "form", "style", "link",
                  "svg", "frame", "frameset", "applet", "noscript", "template", "maction",
                  "mglyph", "malignmark", "semantics", "annotation", "annotation-xml"}
HTML_M_TAGS = {"main", "mark", "menu", "meter", "meta", "map"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "srcdoc",
                  "background", "poster", "content"}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))

    handle_startendtag = handle_starttag


def live_html_problems(page: str) -> list[str]:
    """What in this HTML would run a script, leave the page or frame another document."""
    problems = []
    lowered = page.lower()
    for word in ("<script", "<iframe", "<object", "<embed", "<base", "<meta", "<form", "<svg"):
        if word in lowered:
            problems.append(f"raw {word}")
    parser = _Tags()
    parser.feed(page)
    for tag, attrs in parser.found:
        if tag in FORBIDDEN_TAGS:
            problems.append(f"<{tag}>")
        for name, value in attrs:
            mathml = tag == "math" or tag.startswith("m") and tag not in HTML_M_TAGS
            if name.startswith("on") or name == "href" and tag != "a" or mathml and name == "style":
                problems.append(f"<{tag} {name}=>")
            if name in URL_ATTRIBUTES and value is not None:
                url = re.sub(r"[\s\x00-\x1f]", "", html.unescape(value)).lower()
                scripted = ("javascript:", "vbscript:", "data:text")
                if tag != "img" or name != "src":  # an image runs no script, SVG or not
                    scripted += ("data:image/svg",)
                if url.startswith(scripted):
                    problems.append(f"<{tag} {name}={value[:40]}>")
    return problems


def _templates() -> str:
    import nbgrader.server_extensions.formgrader as fg

    return str(Path(fg.__file__).parent / "templates")


def _bootstrap_css() -> str:
    import nbgrader.server_extensions.formgrader as fg

    return str(Path(fg.__file__).parent / "static" / "node_modules" / "bootstrap" / "dist" / "css")


@functools.cache
def _exporter(template: str):
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name=template, extra_template_basedirs=[_templates()],
                        extra_template_paths=[_bootstrap_css()])


def feedback_page(nb: nbformat.NotebookNode) -> str:
    """The page `nbgrader generate_feedback` makes (its feedback template)."""
    exporter = _exporter("feedback")
    resources = {"nbgrader": {"notebook": "vae_tp", "score": 1, "max_score": 2,
                              "late_penalty": 0}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


@functools.cache
def _course_exporter():
    from traitlets.config import Config

    from vaetp.grading.feedback import FeedbackExporter

    config = Config()
    config.HTMLExporter.extra_template_paths = [_bootstrap_css()]  # as GenerateFeedback sets
    return FeedbackExporter(config=config)


def course_feedback_page(nb: nbformat.NotebookNode) -> str:
    """The page `make feedback` makes: the course's template (vaetp/grading/feedback.py),
    which names the cells, shows a failed test's message and 'not graded yet'."""
    resources = {"nbgrader": {"notebook": "vae_tp", "score": 1, "max_score": 2,
                              "late_penalty": 0, "not_graded": 1, "not_graded_points": 1}}
    body, _ = _course_exporter().from_notebook_node(nb, resources=resources)
    return body


def formgrader_page(nb: nbformat.NotebookNode) -> str:
    """The page the Formgrader serves for a submission (its formgrade template)."""
    exporter = _exporter("formgrade")
    resources = {"base_url": "", "submission_id": "1", "notebook_id": "vae_tp", "index": 0,
                 "total": 1, "student": "mallory", "notebook_path": "x", "assignment_id": "vae"}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def between_markers(page: str) -> str:
    """The student-made part of the page: between the two marker cells."""
    assert page.count("BEFORE-STUDENT") == 1 and page.count("AFTER-STUDENT") == 1, page[:2000]
    return page.split("BEFORE-STUDENT", 1)[1].split("AFTER-STUDENT", 1)[0]


def _answer(text: str) -> nbformat.NotebookNode:
    """A hand-graded written answer, as nbgrader releases it (and the student fills it)."""
    return nbformat.v4.new_markdown_cell(text, metadata={"nbgrader": {
        "grade": True, "solution": True, "locked": False, "grade_id": "answer-1", "points": 2,
        "schema_version": 3, "score": 1}})


def graded(cells, **metadata) -> nbformat.NotebookNode:
    """The autograded notebook, sanitized as nbgrader_config.py does."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("BEFORE-STUDENT"), *cells,
        nbformat.v4.new_markdown_cell("AFTER-STUDENT")], metadata=metadata)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                          "language": "python"})
    nb, _ = SanitizeOutputs()(nb, {})
    return nb


def assert_inert(nb: nbformat.NotebookNode, what: str) -> None:
    for name, render in (("feedback", feedback_page), ("course feedback", course_feedback_page),
                         ("formgrader", formgrader_page)):
        problems = live_html_problems(between_markers(render(nb)))
        assert not problems, f"{what}: live HTML in the {name} page: {problems}"


# --- The detector itself finds live HTML (so the tests below can fail). ---

def test_the_detector_finds_the_red_teams_payload_in_an_unsanitized_page():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("BEFORE-STUDENT"), _answer(MARKDOWN_PAYLOADS["maths-code-span"]),
        nbformat.v4.new_markdown_cell("AFTER-STUDENT")])
    assert "<img onerror=>" in live_html_problems(between_markers(feedback_page(nb)))


# --- Answers, markdown outputs, errors and metadata, by kind of payload. ---

@pytest.mark.parametrize("kind", sorted(MARKDOWN_PAYLOADS))
def test_a_payload_in_a_written_answer_is_inert_in_the_feedback_and_formgrader(kind):
    nb = graded([_answer("My answer: the KL is $\\mu(x)$.\n\n" + MARKDOWN_PAYLOADS[kind])])
    assert_inert(nb, kind)
    assert "My answer" in between_markers(feedback_page(nb))


@pytest.mark.parametrize("kind", sorted(MARKDOWN_PAYLOADS))
def test_a_payload_in_a_markdown_output_is_inert(kind):
    output = nbformat.v4.new_output("display_data", {"text/markdown": MARKDOWN_PAYLOADS[kind],
                                                     "text/plain": "<IPython.core.display.Markdown>"})
    assert_inert(graded([nbformat.v4.new_code_cell("display(Markdown(x))", outputs=[output])]), kind)


@pytest.mark.parametrize("mime", ["text/html", "image/svg+xml", "text/latex"])
@pytest.mark.parametrize("kind", ["maths-code-span", "script", "svg-onload", "iframe-srcdoc",
                                  "meta-refresh", "base", "form", "js-link", "entity-colon",
                                  "mathml-mxss", "noscript-mxss"])
def test_a_payload_in_an_html_svg_or_latex_output_is_inert(kind, mime):
    payload = MARKDOWN_PAYLOADS[kind]
    if mime == "image/svg+xml":
        payload = f'<svg xmlns="http://www.w3.org/2000/svg" onload="{JS}">{payload}</svg>'
    output = nbformat.v4.new_output("display_data", {mime: payload, "text/plain": "x"})
    assert_inert(graded([nbformat.v4.new_code_cell("x", outputs=[output])]), f"{kind} in {mime}")


@pytest.mark.parametrize("kind", ["script", "maths-code-span", "iframe-srcdoc", "js-link"])
def test_a_payload_in_an_error_message_is_inert(kind):
    payload = MARKDOWN_PAYLOADS[kind]
    error = nbformat.v4.new_output("error", ename=payload, evalue=payload,
                                   traceback=[payload, "\x1b[0;31m" + payload + "\x1b[0m"])
    stream = nbformat.v4.new_output("stream", name="stderr", text=payload)
    # the course's feedback shows a graded test's message, and the grader's note, as sentences
    note = nbformat.v4.new_output("stream", name="stdout",
                                  text="[as handed in, not re-run by the grader " + payload)
    test = nbformat.v4.new_code_cell("check()", outputs=[error], metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "test_x", "points": 1,
        "schema_version": 3, "score": 0}})
    assert_inert(graded([nbformat.v4.new_code_cell("raise X", outputs=[stream, error, note]),
                         test]), kind)


def test_payloads_in_cell_metadata_attachments_and_notebook_metadata_are_inert():
    """nbconvert's own advisory (CVE-2021-32862, GHSA-9jmq-rx5f-8jwq) listed these places:
    the notebook's title, widget state, cell attachments, cell tags, SVG outputs, raw cells."""
    script = f"<script>{JS}</script>"
    answer = _answer("![diagram](attachment:a.png) ![svg](attachment:b.svg) ![html](attachment:c)")
    answer.attachments = {
        "a.png": {"image/png": f'x"><img src=x onerror={JS}>'},
        "b.svg": {"image/svg+xml": base64.b64encode(
            f"<svg xmlns='http://www.w3.org/2000/svg' onload='{JS}'/>".encode()).decode()},
        "c": {"text/html": script},
    }
    answer.metadata.tags = [f'x"><img src=x onerror={JS}>', "solution"]
    answer.metadata["evil"] = script
    code = nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "execute_result", {"text/plain": "1"}, execution_count=1)])
    raw_html = nbformat.v4.new_raw_cell(f"<img src=x onerror={JS}>",
                                        metadata={"raw_mimetype": "text/html"})
    raw_markdown = nbformat.v4.new_raw_cell(MARKDOWN_PAYLOADS["maths-code-span"],
                                            metadata={"raw_mimetype": "text/markdown"})
    nb = graded([answer, code, raw_html, raw_markdown], title=f"</title>{script}<title>",
                widgets={"application/vnd.jupyter.widget-state+json": {"x": f"</script>{script}"}})
    assert_inert(nb, "metadata")
    for page in (feedback_page(nb), formgrader_page(nb)):
        assert JS not in page.split("BEFORE-STUDENT")[0]  # the <head> and the title
    assert nb.cells[1].metadata.tags == ["solution"]
    assert "evil" not in nb.cells[1].metadata and "widgets" not in nb.metadata


# --- What the grader and the student still see. ---

def test_an_honest_answer_keeps_its_text_formatting_and_maths_for_the_reader():
    text = ("The KL is **small**: $D_{KL} < 5$ nats, see <https://keras.io>.\n\n"
            "$$\\mathcal{L} = \\mathbb{E}[\\log p(x|z)] - D_{KL}$$\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n\n```python\nz = mu + sigma * eps\n```")
    nb = graded([_answer(text)])
    part = between_markers(feedback_page(nb))
    assert not live_html_problems(part)
    shown = html.unescape(re.sub(r"<[^>]+>", "", part))
    for expected in ("The KL is small", "https://keras.io", "one", "two", "z = mu + sigma * eps"):
        assert expected in shown, expected
    # maths as MathML, laid out by the browser with no script (offline, under the page's policy)
    assert ('<math display="inline"><mrow><msub><mi>D</mi><mrow><mi>K</mi><mi>L</mi></mrow>'
            '</msub><mo>&lt;</mo><mn>5</mn></mrow></math>') in part
    assert '<math display="block"><mrow><mi>\u2112</mi><mo>=</mo><mi>\U0001d53c</mi>' in part
    assert "$" not in shown and "\\" not in shown  # no TeX left as text
    assert "<strong>small</strong>" in part and "<table>" in part and 'href="https://keras.io"' in part
    assert "removed by the grader" not in part


def test_the_stored_answer_is_rendered_once_more_as_exactly_itself():
    """The stored cell is the cleaned HTML, which nbconvert passes through as is: no markdown
    or maths rule finds anything in it to turn into HTML again."""
    for payload in MARKDOWN_PAYLOADS.values():
        stored = sanitize_markdown(payload)
        assert render_markdown(stored).strip() == stored.strip(), payload


def test_a_cleaned_answer_says_that_something_was_removed():
    stored = sanitize_markdown(MARKDOWN_PAYLOADS["maths-code-span"])
    assert "removed by the grader" in stored and "onerror" not in stored


@pytest.mark.parametrize("path", [MASTER, STUDENT], ids=["master", "student"])
def test_the_tps_own_markdown_and_diagrams_still_render(path):
    nb = nbformat.read(path, as_version=4)
    attachments = sum(len(cell.get("attachments", {})) for cell in nb.cells)
    for cell in nb.cells:  # the scores nbgrader's feedback step adds
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata.nbgrader.setdefault("score", 0)
    clean, _ = SanitizeOutputs()(nbformat.from_dict(nb), {})
    page = feedback_page(clean)
    assert page.count('src="data:image/png;base64,') >= attachments > 0
    formulas = 0
    for cell in clean.cells:
        if cell.cell_type == "markdown":
            assert "removed by the grader" not in cell.source, cell.id
            # every formula as MathML: no TeX left for a script to typeset
            assert "&#36;" not in cell.source and "&#92;" not in cell.source, cell.id
            formulas += cell.source.count("<math ")
    assert formulas >= 100


def test_outputs_keep_text_figures_and_clean_html_and_drop_scripts():
    png = "iVBORw0KGgo="
    svg = "<svg xmlns='http://www.w3.org/2000/svg' onload='x()'><circle r='1'/></svg>"
    outputs = [
        nbformat.v4.new_output("display_data", {"image/png": png, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("display_data", {"text/html": "<b>table</b><img src=x onerror=y>",
                                                "text/plain": "t"}),
        nbformat.v4.new_output("display_data", {"application/javascript": "window.x=1",
                                                "text/plain": "<Javascript object>"}),
        nbformat.v4.new_output("display_data", {"image/svg+xml": svg}),
        nbformat.v4.new_output("stream", name="stdout", text="<b>printed</b>"),
        nbformat.v4.new_output("display_data", {"text/markdown": "**bold** $x^2$"}),
    ]
    nb = graded([nbformat.v4.new_code_cell("x", outputs=outputs)], title="<script>x</script>")
    kept = nb.cells[1].outputs
    assert kept[0].data == {"image/png": png, "text/plain": "<Figure>"}
    assert kept[1].data["text/html"] == "<b>table</b><img src=\"x\">"
    assert list(kept[2].data) == ["text/plain"] and "application/javascript" in kept[2].data["text/plain"]
    assert kept[3].data == {"text/html": '<img src="data:image/svg+xml;base64,'
                            + base64.b64encode(svg.encode()).decode() + '" alt="SVG figure">'}
    assert kept[4].text == "<b>printed</b>"  # stream text is escaped by every template
    assert ("<strong>bold</strong> <math display=\"inline\"><mrow><msup><mi>x</mi><mn>2</mn>"
            "</msup></mrow></math>") in kept[5].data["text/html"]
    assert "title" not in nb.metadata


def test_every_autograde_step_of_the_course_config_is_switched_on():
    """nbconvert's preprocessors are off unless enabled: a sanitizer that never runs protects
    nobody (found by tests/e2e/test_formgrader_xss.py). It runs after SaveAutoGrades, which
    tells an unanswered answer cell by its checksum."""
    import importlib

    from traitlets.config.loader import PyFileConfigLoader

    from course_paths import ROOT

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    names = config.Autograde.autograde_preprocessors
    assert "vaetp.grading.sanitize.SanitizeOutputs" in names
    assert "vaetp.grading.execute.GradingExecute" in names
    assert names.index("vaetp.grading.sanitize.SanitizeOutputs") > names.index(
        "nbgrader.preprocessors.SaveAutoGrades")
    for name in names:
        module, _, cls = name.rpartition(".")
        step = getattr(importlib.import_module(module), cls)(config=config)
        if module.startswith("vaetp.") or cls == "SaveAutoGrades":
            assert step.enabled, name


# --------------------------------------------------------------------------------------------
# Rendering time: no notebook holds the grader up (a red-team review: nbconvert's maths rules
# take time quadratic in `\begin{a}` repeated without `\end`)
# --------------------------------------------------------------------------------------------

SLOW_MARKDOWN = "\\begin{a}" * 40_000  # 360 KB: about three minutes to render, before the cap


def test_a_huge_markdown_answer_is_stored_as_escaped_text_at_once():
    import time

    from vaetp.grading.sanitize import sanitize_markdown

    started = time.monotonic()
    block = sanitize_markdown(SLOW_MARKDOWN)
    assert time.monotonic() - started < 5
    assert "<pre>" in block and "&#92;begin{a}" in block and "\\" not in block


def test_markdown_outputs_past_the_notebooks_rendering_time_are_escaped_not_rendered():
    import time

    from vaetp.grading.sanitize import MAX_RENDERED_CHARS, SanitizeOutputs

    # many outputs just under the size cap: each renders slowly, the budget stops the rest
    text = ("\\begin{a}" * (MAX_RENDERED_CHARS // 9))[:MAX_RENDERED_CHARS]
    outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": text + f" {i}"})
               for i in range(40)]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=outputs)])
    started = time.monotonic()
    SanitizeOutputs(render_seconds=2.0).preprocess(nb, {})
    assert time.monotonic() - started < 2.0 + 3 * 2.0  # the budget, plus at most a few renders
    html_out = [o.data["text/html"] for o in nb.cells[0].outputs]
    assert all("\\" not in h and "<script" not in h for h in html_out)
    assert html_out[-1].startswith("<div>\n<pre>")  # the last ones were not rendered


def test_formulas_past_the_cells_mathml_budget_stay_as_tex_text():
    """MathML is about 16 times its TeX and nbconvert parses the whole page again on every
    Formgrader view (a red-team review: 20 cells of small formulas, a 5.7 MB page, 30 s)."""
    import vaetp.grading.sanitize as sanitize

    source = " ".join(f"$x_{{{i}}}$" for i in range(1500))
    stored = sanitize_markdown(source)
    maths = re.findall(r"<math.*?</math>", stored, re.S)
    assert 10 < len(maths) < 1500
    assert sum(map(len, maths)) < sanitize.MAX_CELL_MATHML_CHARS + 1000
    assert "&#36;x_{1499}&#36;" in stored  # the rest as TeX text


def test_a_notebook_gets_a_bounded_amount_of_mathml_and_the_tps_own_fits():
    cell = " ".join(f"$x_{{{i}}}$" for i in range(300))
    nb = nbformat.v4.new_notebook(cells=[_answer(cell + f" cell {k}") for k in range(60)])
    clean, _ = SanitizeOutputs(mathml_chars=200_000)(nb, {})
    with_maths = [c for c in clean.cells if "<math" in c.source]
    assert 3 <= len(with_maths) < 60
    assert "&#36;x_{0}&#36;" in clean.cells[-1].source
    assert SanitizeOutputs().mathml_chars >= 4 * 250_000  # the TP's own: about 250,000


def test_a_lone_surrogate_is_shown_not_fatal():
    """Valid JSON (`\\ud800`) that no encoder takes: the notebook is still graded."""
    nb = graded([_answer("a \ud800 b $x$"), nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("display_data", {"text/html": "<b>\ud800</b>"})])])
    assert "\ud800" not in nb.cells[1].source
    assert nb.cells[2].outputs[0].data["text/html"] == "<b>\ufffd</b>"
