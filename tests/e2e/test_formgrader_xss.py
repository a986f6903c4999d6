"""A hostile submission is inert where the instructor and the student look at it (Formgrader,
JupyterLab, feedback), in a real browser (Debian's Chromium driven by Playwright).

A scratch course gets a release without solutions and one submission, made from that release:
a correct decoder (solutions/decoder_vae.py) followed by every way we know for a notebook to
carry a script to a browser: HTML, JavaScript, SVG and Markdown display outputs, a printed tag,
a markdown cell with `<img onerror>`, `<script>`, `<svg onload>`, `<details ontoggle>`, a
`javascript:` link and two iframes, a raw HTML cell, and the notebook's title. Each payload,
should it run, marks the page (`window.__pwned`, and `top.__pwned` from an iframe), calls a
beacon (`/pwned-beacon/NAME`), then does what a real attacker would do with the instructor's
session: reads the `_xsrf` cookie and writes `pwned-NAME.txt` into the course folder through
the Jupyter contents API, starts a kernel, and opens an alert.

The submission is autograded and its feedback generated with tools/grade.py (the real nbgrader,
bubblewrap sandbox, `SanitizeOutputs`). A Jupyter server (JupyterLab + nbgrader's formgrader)
then serves the course folder on 127.0.0.1, from the course folder, so that the formgrader finds
the course there (nbgrader reads ./nbgrader_config.py; CourseDirectory.root is the working
directory). One browser context, logged in once, opens: the autograded notebook in JupyterLab,
the Formgrader's manual-grading page of the submission, the feedback HTML served by the
Jupyter server (/files/...), and the same file from disk (file://); it clicks the `javascript:`
link where there is one. Then it asserts that no payload ran (no `__pwned` in any frame, no
dialog, no beacon, no write to /api/contents or /api/kernels, no new file in the course folder)
and that the notebook's own content still renders (the diagrams attached to markdown cells, an
honest matplotlib figure of the student's, the grader's note on the cells it skips, the encoder's
summary, and the grader's notes in place of the removed outputs).

The submission is built anew each run (its payloads name the server's port, for the page opened
from disk); a copy is left in build/e2e/submitted-xss-attempt.ipynb, with the server's log and a
screenshot of each page.

Self-check of the detector: VAE_TP_E2E_XSS_UNSANITIZED=1 drops `SanitizeOutputs` from the
scratch course's nbgrader_config.py; the test must then fail and name the payloads that ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import urllib.parse
from pathlib import Path

import nbformat
import pytest
import requests
from e2e_support import CHROMIUM_ARGS, run_grade, LOOPBACK, free_port, jupyter_lab

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vaetp.grading.execute import SKIPPED_NOTE  # noqa: E402

CHROMIUM = os.environ.get("VAE_TP_CHROMIUM", "/usr/bin/chromium")
ASSIGNMENT = "vae"
NOTEBOOK = "vae_tp.ipynb"
NOTEBOOK_ID = "vae_tp"
STUDENT = "mallory"
EXERCISE_ID = "decoder-exercise"
ANSWER_ID = "answer-overfitting"
SANITIZER = "vaetp.grading.sanitize.SanitizeOutputs"
UNSANITIZED = os.environ.get("VAE_TP_E2E_XSS_UNSANITIZED") == "1"
# Bounds: each grade.py step, the server's start, each page's load, the wait for late payloads.
STEP_TIMEOUT_S = 420
PAGE_TIMEOUT_MS = 60_000
SETTLE_MS = 3_000
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
OUT = REPO / "build" / "e2e"


# ----------------------------------------------------------------------------------------------
# The hostile submission
# ----------------------------------------------------------------------------------------------

def payload_js(name: str, server: str) -> str:
    """What a payload does if it runs: mark the page, call the beacon, then use the victim's
    Jupyter session (the `_xsrf` cookie) to write a file and start a kernel, then alert. Single
    quotes only and no `<`, `>` or `&`, so that it fits in any attribute, tag or SVG. `server`
    is used from a page that is not served over http (the feedback file opened from disk)."""
    js = (
        "(function(){var n='%(name)s';"
        "try{window.__pwned=(window.__pwned||[]).concat([n]);}catch(e){}"
        "try{if(top!==window){top.__pwned=(top.__pwned||[]).concat([n]);}}catch(e){}"
        "var b=String(location.protocol).indexOf('http')===0?'':'%(server)s';"
        "var x='';try{var m=String(document.cookie).match(/_xsrf=([^;]+)/);"
        "x=m?decodeURIComponent(m[1]):'';}catch(e){}"
        "var h={'Content-Type':'application/json','X-XSRFToken':x};"
        "try{fetch(b+'/pwned-beacon/'+n).catch(function(){});}catch(e){}"
        "try{fetch(b+'/api/contents/pwned-'+n+'.txt',{method:'PUT',credentials:'include',"
        "headers:h,body:JSON.stringify({type:'file',format:'text',content:'pwned by '+n})})"
        ".catch(function(){});}catch(e){}"
        "try{fetch(b+'/api/kernels',{method:'POST',credentials:'include',headers:h,"
        "body:'{}'}).catch(function(){});}catch(e){}"
        "try{setTimeout(function(){alert('pwned '+n);},500);}catch(e){}"
        "})()"
    ) % {"name": name, "server": server}
    assert not set('"<>&') & set(js), js
    return js


def js_url(name: str, server: str) -> str:
    """A `javascript:` URL (percent-encoded: no space or parenthesis for markdown to trip on)."""
    return "javascript:" + urllib.parse.quote(payload_js(name, server), safe="")


def hostile_notebook(release: Path, server: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """The release with the exercise solved and every payload in; returns it and the names of
    the payloads."""
    nb = nbformat.read(release, as_version=4)
    names: list[str] = []

    def js(name: str) -> str:
        names.append(name)
        return payload_js(name, server)

    def url(name: str) -> str:
        names.append(name)
        return js_url(name, server)

    def img(name: str) -> str:
        return '<img src=x onerror="%s">' % js(name)

    def script(name: str) -> str:
        return "<script>%s</script>" % js(name)

    # The exercise cell: the solution, then display outputs (run by the grader's kernel).
    decoder = (REPO / "solutions" / "decoder_vae.py").read_text(encoding="utf-8")
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="%s">%s</svg>'
           % (js("out-svg-onload"), script("out-svg-script")))
    link = '<a href="%s">click me</a>' % url("out-html-link")
    displays = [
        "from IPython.display import HTML, SVG, Javascript, Markdown, display",
        "display(HTML(%r))" % img("out-html-img"),
        "display(HTML(%r))" % script("out-html-script"),
        "display(Javascript(%r))" % js("out-javascript"),
        "display(SVG(%r))" % svg,
        "display(Markdown(%r))" % img("out-markdown-img"),
        # parser differential: a code span to a plain parser, raw HTML to nbconvert's maths rules
        "display(Markdown(%r))" % ("$`$%s$`$" % img("out-markdown-maths")),
        "display({'text/html': %r, 'text/plain': 'a link'}, raw=True)" % link,
        "print(%r)" % img("stream-img"),
        # and an honest figure, which must still be shown
        "import matplotlib.pyplot as plt",
        "fig, ax = plt.subplots(figsize=(2, 2))",
        "ax.plot([0, 1], [0, 1])",
        "plt.show()",
    ]
    # The other exercises: the student %load'ed their solutions.
    for cell in nb.cells:
        found = re.search(r"^# %load \.\./solutions/(\S+)$", cell.source, re.M)
        if found and cell.get("id") != EXERCISE_ID:
            cell.source = found.group(0) + "\n" + (REPO / "solutions" / found.group(1)).read_text()
    exercise = next(cell for cell in nb.cells if cell.get("id") == EXERCISE_ID)
    exercise.source = decoder + "\n" + "\n".join(displays) + "\n"

    # A markdown cell and a raw HTML cell of the student's, and the notebook's title.
    markdown = "\n\n".join([
        "## My notes",
        img("md-img"),
        script("md-script"),
        '<svg onload="%s"></svg>' % js("md-svg"),
        '<details open ontoggle="%s"><summary>more</summary>details</details>' % js("md-details"),
        "[click me](%s)" % url("md-link"),
        '<iframe srcdoc="&lt;script&gt;%s&lt;/script&gt;"></iframe>' % js("md-iframe-srcdoc"),
        '<iframe src="%s"></iframe>' % url("md-iframe-src"),
        "The decoder mirrors the encoder, as the figure below shows.",
    ])
    at = nb.cells.index(exercise) + 1
    nb.cells.insert(at, nbformat.v4.new_markdown_cell(markdown))
    # The answer to a question graded by hand: the red team's payload (maths around an
    # `<img onerror>` that a parser without the maths rules reads as a code span), and others.
    answer = next(cell for cell in nb.cells if cell.get("id") == ANSWER_ID)
    answer.source = "\n\n".join([
        "Overfitting shows when the validation loss rises: $\\mathcal{L}_{val}$.",
        "$`$%s$`$" % img("answer-maths-code-span"),
        "- a list\n  - %s\n    1. $`$%s$`$" % (img("answer-nested-list"), script("answer-nested-script")),
        "[click me](&#106;avascript:%s)" % urllib.parse.quote(js("answer-entity-link"), safe=""),
        "\\begin{equation}%s\\end{equation}" % img("answer-latex-env"),
        '<math><mtext><table><mglyph><style><img src=x onerror="%s">' % js("answer-mathml"),
        '<meta http-equiv="refresh" content="0;url=%s">' % url("answer-meta-refresh"),
    ])
    # a tag may hold no comma (nbformat's schema): a shorter payload, which marks and beacons
    names.append("cell-tag")
    answer.metadata["tags"] = [
        "x\"><img src=x onerror=\"window.__pwned=['cell-tag'];fetch('/pwned-beacon/cell-tag')\">"]
    # An exception whose message carries a tag (the last cell, so that nothing is skipped).
    nb.cells.append(nbformat.v4.new_code_cell(
        "raise ValueError(%r)" % img("error-message")))
    nb.cells.insert(at + 1, nbformat.v4.new_raw_cell(img("raw-html"),
                                                     metadata={"raw_mimetype": "text/html"}))
    # Outputs handed in with a cell the grader does not run (a figure's cell): the feedback
    # shows them as handed in, cleaned like every output.
    figure = next(cell for cell in nb.cells if cell.get("id") == "loss-curves")
    figure.outputs = [
        nbformat.v4.new_output("display_data", {"text/html": img("handed-in-html"),
                                                "text/plain": "a figure"}),
        nbformat.v4.new_output("display_data", {"image/svg+xml": svg.replace(
            "out-svg", "handed-in-svg")}),
        nbformat.v4.new_output("stream", name="stdout", text=script("handed-in-stream")),
    ]
    names += ["handed-in-svg-onload", "handed-in-svg-script"]
    nb.metadata["title"] = "</title>%s<title>" % script("nb-title")
    return nb, names


# ----------------------------------------------------------------------------------------------
# The course: release, submission, autograde, feedback
# ----------------------------------------------------------------------------------------------

def grade(course: Path, *args: str) -> str:
    return run_grade(course, *args, timeout=STEP_TIMEOUT_S)


def course_files(course: Path) -> set[str]:
    return {str(p.relative_to(course)) for p in course.rglob("*") if p.is_file()}


@pytest.fixture
def graded_course(tmp_path):
    """A scratch course with the hostile submission autograded and its feedback generated.
    Yields (course, the Jupyter server's port, the payloads' names, timings)."""
    started = time.perf_counter()
    course = tmp_path / "course"
    course.mkdir()
    port = free_port()
    grade(course, "release", "--no-solutions")
    if UNSANITIZED:
        config = course / "nbgrader_config.py"
        text = config.read_text(encoding="utf-8")
        assert f'"{SANITIZER}",' in text
        config.write_text(text.replace(f'"{SANITIZER}",', ""), encoding="utf-8")
    nb, names = hostile_notebook(course / "release" / ASSIGNMENT / NOTEBOOK,
                                 f"http://{LOOPBACK}:{port}")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    nbformat.write(nb, inbox / f"{STUDENT}.ipynb")
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(inbox / f"{STUDENT}.ipynb", OUT / "submitted-xss-attempt.ipynb")  # for the reader
    prepared = time.perf_counter()
    grade(course, "autograde", "--submissions", str(inbox))
    graded = time.perf_counter()
    grade(course, "feedback")
    timings = {"release": prepared - started, "autograde": graded - prepared,
               "feedback": time.perf_counter() - graded}
    yield course, port, names, timings


@pytest.fixture
def jupyter(graded_course, tmp_path):
    """JupyterLab and the formgrader on 127.0.0.1, in the course folder (as an instructor runs
    `jupyter lab` there). Yields (base URL, token)."""
    course, port, _, _ = graded_course
    settings = tmp_path / "lab-settings"
    for plugin, values in {
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # every cell in the page (no windowing), and nothing saved behind the test's back
        "notebook-extension/tracker": {"windowingMode": "none"},
        "docmanager-extension/plugin": {"autosave": False},
    }.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    config_dir = tmp_path / "jupyter-config"  # the JUPYTER_CONFIG_DIR of jupyter_lab()
    config_dir.mkdir(exist_ok=True)
    if not UNSANITIZED:
        shutil.copy(REPO / "jupyter_server_config.json", config_dir / "jupyter_server_config.json")
    log = tmp_path / "jupyter-formgrader.log"
    try:
        with jupyter_lab(course, tmp_path, log, settings, port) as server:
            yield server
    finally:
        if log.exists():
            OUT.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, OUT / "jupyter-formgrader.log")


# ----------------------------------------------------------------------------------------------
# The browser
# ----------------------------------------------------------------------------------------------

class Watch:
    """What the browser context did, page by page: requests, dialogs, page errors, and the
    requests it was not allowed to make (anything but the server, data: and file: URLs)."""

    def __init__(self, base: str):
        self.base = base
        self.labels: dict[int, str] = {}  # id(page) -> what the test opened there
        self.requests: list[tuple[str, str, str]] = []  # (page, method, url)
        self.dialogs: list[tuple[str, str]] = []  # (page, message)
        self.errors: list[str] = []
        self.blocked: list[str] = []

    def attach(self, context) -> None:
        context.on("request", self._request)
        context.on("page", self._page)
        context.route("**/*", self._route)

    def label(self, page) -> str:
        return self.labels.get(id(page), f"another page ({page.url[:80]})")

    def _request(self, request) -> None:
        try:
            where = self.label(request.frame.page)
        except Exception:
            where = "a worker"
        self.requests.append((where, request.method, request.url))

    def _page(self, page) -> None:
        def dialog(d):
            self.dialogs.append((self.label(page), d.message))
            try:
                d.dismiss()
            except Exception:
                pass
        page.on("dialog", dialog)
        page.on("pageerror", lambda error: self.errors.append(f"{self.label(page)}: {error}"))

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.base + "/") or url.startswith(("data:", "blob:", "file:")):
            route.continue_()
        else:  # e.g. MathJax from a CDN: this machine has no network, do not wait for it
            self.blocked.append(url)
            route.abort()

    def forbidden(self) -> dict[str, list[str]]:
        """{page: requests that only a payload makes}: the beacon, and writes to the contents
        or kernels API (the test's own JupyterLab page makes none: its checkpoint exists)."""
        bad: dict[str, list[str]] = {}
        for where, method, url in self.requests:
            path = urllib.parse.urlsplit(url).path
            if "pwned" in url or (method in WRITE_METHODS and path.startswith(
                    ("/api/contents", "/api/kernels"))):
                bad.setdefault(where, []).append(f"{method} {path}")
        return bad


@pytest.fixture
def browser_context(jupyter):
    from playwright.sync_api import sync_playwright

    base, _ = jupyter
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        # service workers blocked: every request of every page goes through the watch
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      service_workers="block")
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        watch = Watch(base)
        watch.attach(context)
        try:
            yield context, watch
        finally:
            for index, page in enumerate(context.pages):
                try:
                    OUT.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(OUT / f"xss-page-{index}.png"), full_page=False,
                                    timeout=10_000)
                except Exception:
                    pass
            context.close()
            browser.close()


def pwned_in(page) -> list[str]:
    """The payloads that marked a frame of the page ("name", or "name (in an iframe)")."""
    found = []
    for frame in page.frames:
        try:
            value = frame.evaluate("() => window.__pwned === undefined ? null : window.__pwned")
        except Exception as error:  # a frame gone, or navigated: say so rather than hide it
            value = [f"(could not read frame {frame.url[:80]}: {error})"]
        if value is not None:
            where = "" if frame is page.main_frame else " (in an iframe)"
            found.extend(f"{item}{where}" for item in (
                value if isinstance(value, list) else [repr(value)]))
    return sorted(set(found))


def click_links(page, text: str = "click me") -> int:
    """Click each link with this text (the `javascript:` links of the submission)."""
    links = page.locator("a", has_text=text)
    clicked = 0
    for index in range(links.count()):
        try:
            links.nth(index).click(timeout=5_000, no_wait_after=True, force=True)
            clicked += 1
        except Exception:
            pass
    return clicked


def png_images(page, scope: str) -> list[bool]:
    """For each image that `scope` selects: loaded and non-empty."""
    page.wait_for_function(
        f"() => [...document.querySelectorAll({json.dumps(scope)})].every(i => i.complete)",
        timeout=30_000)
    return page.evaluate(
        f"() => [...document.querySelectorAll({json.dumps(scope)})]"
        ".map(i => i.complete && i.naturalWidth > 0)")


# ----------------------------------------------------------------------------------------------
# The test
# ----------------------------------------------------------------------------------------------

def test_hostile_submission_is_inert_in_formgrader_lab_and_feedback(
        graded_course, jupyter, browser_context):
    started = time.perf_counter()
    course, _, names, timings = graded_course
    base, token = jupyter
    context, watch = browser_context
    autograded = course / "autograded" / STUDENT / ASSIGNMENT / NOTEBOOK
    feedback = course / "feedback" / STUDENT / ASSIGNMENT / f"{NOTEBOOK_ID}.html"
    assert autograded.is_file() and feedback.is_file()

    # The attack reached the grader: the exercise cell ran and displayed its outputs.
    graded_nb = nbformat.read(autograded, as_version=4)
    exercise = next(cell for cell in graded_nb.cells if cell.get("id") == EXERCISE_ID)
    shown = [o for o in exercise.outputs if o.output_type in ("display_data", "stream")]
    assert len(shown) >= 7, f"the exercise cell's payloads did not run: {exercise.outputs}"
    figures = sum(1 for o in exercise.outputs if "image/png" in o.get("data", {}))
    assert figures == 1, "the student's figure is not in the autograded notebook"
    # The images every page must show: that figure, and the diagrams attached to markdown cells.
    images = figures + sum(len(cell.get("attachments", {})) for cell in graded_nb.cells)

    # The formgrader sees the course: the submission's id, from its API.
    listing = requests.get(f"{base}/formgrader/api/submitted_notebooks/{ASSIGNMENT}/{NOTEBOOK_ID}",
                           headers={"Authorization": f"token {token}"}, timeout=30)
    assert listing.status_code == 200, listing.text[:2000]
    ids = [s["id"] for s in listing.json() if s["student"] == STUDENT]
    assert len(ids) == 1, listing.json()
    submission_id = ids[0]
    if not UNSANITIZED:
        # Defence in depth: the Formgrader's page and the feedback forbid inline script.
        page = requests.get(f"{base}/formgrader/submissions/{submission_id}/",
                            headers={"Authorization": f"token {token}"}, timeout=60)
        policy = page.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split(
            "script-src", 1)[1].split(";")[0] and "unsafe-eval" not in policy, policy
        assert 'http-equiv="Content-Security-Policy"' in feedback.read_text(encoding="utf-8")
    # JupyterLab makes a checkpoint of a notebook that has none when it opens it: make it now,
    # so that any write from the browser below is a payload's.
    checkpoint = requests.post(
        f"{base}/api/contents/autograded/{STUDENT}/{ASSIGNMENT}/{NOTEBOOK}/checkpoints",
        headers={"Authorization": f"token {token}"}, timeout=30)
    assert checkpoint.status_code == 201, checkpoint.text[:2000]
    before = course_files(course)

    def open_page(label: str, url: str, **kwargs):
        page = context.new_page()
        watch.labels[id(page)] = label
        page.goto(url, **kwargs)
        return page

    # 1. JupyterLab (this logs the browser in: the token in the URL sets the session cookie),
    #    with the autograded notebook open, as from the Formgrader's link to it.
    lab = open_page("JupyterLab",
                    f"{base}/lab/tree/autograded/{STUDENT}/{ASSIGNMENT}/{NOTEBOOK}?token={token}")
    lab.wait_for_selector(".jp-Notebook .jp-MarkdownCell", timeout=90_000)
    lab.wait_for_selector(".jp-Notebook .jp-OutputArea-output", timeout=30_000)
    assert any(c["name"] == "_xsrf" for c in context.cookies()), "no _xsrf cookie to steal"

    # 2. The Formgrader's manual grading page of the submission.
    formgrader = open_page("Formgrader", f"{base}/formgrader/submissions/{submission_id}/",
                           wait_until="load")
    formgrader.wait_for_selector("#notebook-container .cell", timeout=PAGE_TIMEOUT_MS)
    # The Formgrader's own scripts run: they show the autograded scores (as placeholders).
    try:
        formgrader.wait_for_function(
            "() => [...document.querySelectorAll('input.score')].some(i => i.placeholder !== '')",
            timeout=30_000)
        scores_shown = True
    except Exception:
        scores_shown = False

    # 3. The feedback: served by the Jupyter server (as JupyterLab's "Open in New Browser Tab"
    #    does: /files/ wants a same-origin Referer), and opened from disk, as a student does.
    served = open_page("feedback via /files",
                       f"{base}/files/feedback/{STUDENT}/{ASSIGNMENT}/{NOTEBOOK_ID}.html",
                       referer=f"{base}/lab", wait_until="load")
    local = open_page("feedback from disk", feedback.as_uri(), wait_until="load")

    pages = {"JupyterLab": lab, "Formgrader": formgrader, "feedback via /files": served,
             "feedback from disk": local}
    for page in pages.values():
        page.wait_for_timeout(SETTLE_MS // 3)
    clicked = {label: click_links(page) for label, page in pages.items() if page is not lab}
    lab.wait_for_timeout(SETTLE_MS)  # time for late payloads (timers, fetches, alerts)

    # --- No payload ran. ---
    ran = {watch.label(page): pwned_in(page) for page in context.pages}
    ran = {label: found for label, found in ran.items() if found}
    dialogs: dict[str, int] = {}
    for where, _ in watch.dialogs:
        dialogs[where] = dialogs.get(where, 0) + 1
    forbidden = watch.forbidden()
    new_files = sorted(course_files(course) - before)
    problems = [f"  {label}: {len({f.split(' ')[0] for f in found})} payload(s) ran: "
                + ", ".join(found) for label, found in ran.items()]
    problems += [f"  {label}: {count} alert(s)" for label, count in dialogs.items()]
    problems += [f"  {label}: {len(calls)} request(s) only a payload makes: "
                 + ", ".join(sorted(set(calls))) for label, calls in forbidden.items()]
    if new_files:
        problems.append(f"  new files in the course folder: {', '.join(new_files)}")
    assert not problems, (
        f"The hostile submission's scripts ran ({len(names)} payloads in it: "
        f"{', '.join(names)}):\n" + "\n".join(problems))
    assert not list(course.rglob("pwned*"))
    # --- The TP's own outputs still render. ---
    for label, page in pages.items():
        root = ".jp-Notebook" if page is lab else "body"
        loaded = png_images(page, f"{root} img[src^='data:image/']")
        assert len(loaded) >= images and all(loaded), \
            f"{label}: images loaded {loaded}, expected {images} (the figure and the diagrams)"
        text = page.inner_text(root)
        for expected in (SKIPPED_NOTE.strip(), "Total params", "The decoder mirrors the encoder",
                         "Overfitting shows when the validation loss rises"):
            assert expected in text, f"{label}: {expected!r} is missing from the page"
        if page is not lab:
            assert "removed by the grader" in text, f"{label}: the grader's notes are missing"
    assert scores_shown, "the Formgrader's scripts did not show the autograded scores"

    print(f"\nhostile submission: {len(names)} payloads, none ran; links clicked {clicked}; "
          f"outside requests blocked: {len(set(watch.blocked))}; timings (s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
          + f", browser {time.perf_counter() - started:.0f}")
