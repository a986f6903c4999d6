"""What a student made is safe to open in the instructor's browser (Formgrader, feedback)."""

from __future__ import annotations

import nbformat
import pytest
from course_paths import MASTER, STUDENT

from vaetp.grading.sanitize import SanitizeOutputs, plain_markdown, sanitize_markdown

PAYLOADS = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=1</script>",
    "[click](javascript:window.__pwned=1)",
    "[click](  JaVaScRiPt:window.__pwned=1)",
    "<iframe src='https://example.org'></iframe>",
    "<object data='x.swf'></object>",
    "<svg><script>window.__pwned=1</script></svg>",
    "<a href='vbscript:x'>x</a>",
    r"$\href{javascript:window.__pwned=1}{x}$",
    "<style>body{display:none}</style>",
    "<form action='/api/contents'><button>x</button></form>",
    # found by the red-team review: parser differentials and markdown parsed twice
    "<![CDATA[><img src=x onerror=window.__pwned=1>]]>",
    "my plot: <img src=x onerror=window.__pwned=1//",
    "<!-- notes -->\n\n$$\n\n[Click](javascript\\:window.__pwned=1)\n\n$$",
    "[x](&#106;avascript:window.__pwned=1)",
]


def _rendered(markdown):
    """The page nbconvert makes of a markdown cell, as the feedback and the Formgrader do."""
    from nbconvert import HTMLExporter

    cells = [nbformat.v4.new_markdown_cell(text) for text in ("BEFORE-CELL", markdown, "AFTER-CELL")]
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.v4.new_notebook(cells=cells))
    return body.split("BEFORE-CELL", 1)[1].split("AFTER-CELL", 1)[0].lower()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_student_markdown_payload_is_neutralised(payload):
    cleaned = sanitize_markdown("My answer.\n\n" + payload)
    assert "removed by the grader" in cleaned or plain_markdown(cleaned)  # (escaped as text)
    page = _rendered(cleaned)
    for word in ("<img src=x onerror", 'onerror="', "<script", 'href="javascript', "<iframe",
                 "<object", "vbscript:", "<style", "<form"):
        assert word not in page, (payload, word)


@pytest.mark.parametrize("path", [MASTER, STUDENT], ids=["master", "student"])
def test_the_tps_own_markdown_and_attachments_are_left_as_they_are(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            assert sanitize_markdown(cell.source, cell.get("attachments")) == cell.source, cell.id


def test_ordinary_student_markdown_is_kept_verbatim():
    text = "The KL is **small**: $D_{KL} < 5$ nats, see <https://keras.io>.\n\n| a | b |\n|---|---|"
    assert sanitize_markdown(text) == text


def _notebook(outputs, markdown="ok"):
    cell = nbformat.v4.new_code_cell("x", outputs=outputs)
    return nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell(markdown)],
                                    metadata={"title": "<script>x</script>"})


def test_outputs_keep_text_figures_and_clean_html_and_drop_scripts():
    png = "iVBORw0KGgo="
    outputs = [
        nbformat.v4.new_output("display_data", {"image/png": png, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("display_data", {"text/html": "<b>table</b><img src=x onerror=y>",
                                                "text/plain": "t"}),
        nbformat.v4.new_output("display_data", {"application/javascript": "window.x=1",
                                                "text/plain": "<Javascript object>"}),
        nbformat.v4.new_output("display_data", {"image/svg+xml": "<svg onload='x()'/>"}),
        nbformat.v4.new_output("stream", name="stdout", text="<b>printed</b>"),
    ]
    nb, _ = SanitizeOutputs()(_notebook(outputs), {})
    kept = nb.cells[0].outputs
    assert kept[0].data == {"image/png": png, "text/plain": "<Figure>"}
    assert kept[1].data["text/html"] == "<b>table</b><img src=\"x\">"
    assert list(kept[2].data) == ["text/plain"] and "application/javascript" in kept[2].data["text/plain"]
    assert "image/svg+xml" in kept[3].data["text/plain"] and len(kept[3].data) == 1
    assert kept[4].text == "<b>printed</b>"  # stream text is escaped by every template
    assert "title" not in nb.metadata


@pytest.mark.parametrize("html", ["<![CDATA[><img src=x onerror=y>]]>", "a <img src=x onerror=y//"])
def test_html_outputs_always_go_through_the_browser_grade_cleaner(html):
    output = nbformat.v4.new_output("display_data", {"text/html": html})
    nb, _ = SanitizeOutputs()(_notebook([output]), {})
    assert "onerror" not in nb.cells[0].outputs[0].data["text/html"]


def test_plain_markdown_is_told_from_markdown_with_html():
    assert plain_markdown("**bold**, `code <b>`, $a < b$ and [keras](https://keras.io)")
    assert not plain_markdown("<b>bold</b>")
    assert not plain_markdown("[x](javascript:alert(1))")


def test_every_autograde_step_of_the_course_config_is_switched_on():
    """nbconvert's preprocessors are off unless enabled: a sanitizer that never runs protects
    nobody (found by tests/e2e/test_formgrader_xss.py)."""
    import importlib

    from traitlets.config.loader import PyFileConfigLoader

    from course_paths import ROOT

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    names = config.Autograde.autograde_preprocessors
    assert "vaetp.grading.sanitize.SanitizeOutputs" in names
    assert "vaetp.grading.execute.GradingExecute" in names
    for name in names:
        module, _, cls = name.rpartition(".")
        step = getattr(importlib.import_module(module), cls)(config=config)
        if module.startswith("vaetp.") or cls == "SaveAutoGrades":
            assert step.enabled, name
