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
and that the TP's own outputs still render (every PNG figure, the check cell's success message,
the grader's notes in place of the removed outputs).

Self-check of the detector: VAE_TP_E2E_XSS_UNSANITIZED=1 drops `SanitizeOutputs` from the
scratch course's nbgrader_config.py; the test must then fail and name the payloads that ran.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import nbformat
import pytest
import requests
from e2e_support import CHROMIUM_ARGS, LOOPBACK, Process, free_port, wait_http

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vaetp.checks import SUCCESS  # noqa: E402

GRADE = REPO / "tools" / "grade.py"
CHROMIUM = os.environ.get("VAE_TP_CHROMIUM", "/usr/bin/chromium")
ASSIGNMENT = "vae"
NOTEBOOK = "vae_tp.ipynb"
NOTEBOOK_ID = "vae_tp"
STUDENT = "mallory"
EXERCISE_ID = "decoder-exercise"
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
        "try{top.__pwned=(top.__pwned||[]).concat([n]);}catch(e){}"
        "var b=String(location.protocol).indexOf('http')===0?'':'%(server)s';"
        "var m=String(document.cookie).match(/_xsrf=([^;]+)/);"
        "var x=m?decodeURIComponent(m[1]):'';"
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
        "display({'text/html': %r, 'text/plain': 'a link'}, raw=True)" % link,
        "print(%r)" % img("stream-img"),
    ]
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
    nb.cells.insert(at + 1, nbformat.v4.new_raw_cell(img("raw-html"),
                                                     metadata={"raw_mimetype": "text/html"}))
    nb.metadata["title"] = "</title>%s<title>" % script("nb-title")
    return nb, names


# ----------------------------------------------------------------------------------------------
# The course: release, submission, autograde, feedback
# ----------------------------------------------------------------------------------------------

def grade(course: Path, *args: str) -> str:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("VAE_TP_SHIP_SOLUTIONS", None)
    # The payloads do not depend on the data: the MNIST sample bundled with vaetp is enough.
    env["VAE_TP_MNIST"] = os.environ.get("VAE_TP_E2E_MNIST", "sample")
    try:
        done = subprocess.run([sys.executable, str(GRADE), "--course", str(course), *args],
                              env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"grade.py {' '.join(args)} ran past {STEP_TIMEOUT_S} s:\n{error.stdout}")
    if done.returncode != 0:
        pytest.fail(f"grade.py {' '.join(args)} failed ({done.returncode}):\n"
                    f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


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
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONUNBUFFERED="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    token = secrets.token_hex(16)
    jupyter_bin = str(Path(sys.executable).with_name("jupyter"))
    log = tmp_path / "jupyter-formgrader.log"
    process = Process("jupyter lab", [
        jupyter_bin, "lab", "--no-browser", f"--ServerApp.ip={LOOPBACK}", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.root_dir={course}",
        f"--IdentityProvider.token={token}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.allow_remote_access=False",
    ] + (["--allow-root"] if os.geteuid() == 0 else []), log, env=env, cwd=course)
    base = f"http://{LOOPBACK}:{port}"
    try:
        wait_http(f"{base}/api/status?token={token}", process, timeout=90)
        yield base, token
    finally:
        process.stop()
        if log.exists():
            OUT.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, OUT / "jupyter-formgrader.log")


# ----------------------------------------------------------------------------------------------
# The browser
# ----------------------------------------------------------------------------------------------

class Watch:
    """What the browser context did: every request, dialog, page error, and the requests it
    was not allowed to make (anything but the server and data: URLs)."""

    def __init__(self, base: str):
        self.base = base
        self.requests: list[tuple[str, str, str]] = []  # (method, url, page)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.blocked: list[str] = []

    def attach(self, context) -> None:
        context.on("request", self._request)
        context.on("page", self._page)
        context.route("**/*", self._route)

    def _request(self, request) -> None:
        try:
            where = request.frame.page.url
        except Exception:
            where = "?"
        self.requests.append((request.method, request.url, where))

    def _page(self, page) -> None:
        def dialog(d):
            self.dialogs.append(f"{d.type} {d.message!r} on {page.url}")
            try:
                d.dismiss()
            except Exception:
                pass
        page.on("dialog", dialog)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.base + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:  # e.g. MathJax from a CDN: this machine has no network, do not wait for it
            self.blocked.append(url)
            route.abort()

    def forbidden(self) -> list[str]:
        """Requests that only a payload makes."""
        bad = []
        for method, url, where in self.requests:
            path = urllib.parse.urlsplit(url).path
            if "pwned" in url:
                bad.append(f"{method} {url[:120]} (from {where})")
            elif method in WRITE_METHODS and (path.startswith("/api/contents")
                                              or path.startswith("/api/kernels")):
                bad.append(f"{method} {url[:120]} (from {where})")
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
    """The payloads that marked any frame of the page."""
    found = []
    for frame in page.frames:
        try:
            value = frame.evaluate("() => window.__pwned === undefined ? null : window.__pwned")
        except Exception as error:  # a frame gone, or navigated: say so rather than hide it
            value = [f"(could not read frame {frame.url[:80]}: {error})"]
        if value is not None:
            found.extend(f"{item} in frame {frame.url[:80]}" for item in (
                value if isinstance(value, list) else [repr(value)]))
    return found


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
    """For each PNG output image of the page: loaded and non-empty."""
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
    png_outputs = sum(1 for cell in graded_nb.cells if cell.cell_type == "code"
                      for o in cell.get("outputs", []) if "image/png" in o.get("data", {}))
    assert png_outputs >= 3, f"the autograded notebook has {png_outputs} PNG figures"

    # The formgrader sees the course: the submission's id, from its API.
    listing = requests.get(f"{base}/formgrader/api/submitted_notebooks/{ASSIGNMENT}/{NOTEBOOK_ID}",
                           headers={"Authorization": f"token {token}"}, timeout=30)
    assert listing.status_code == 200, listing.text[:2000]
    ids = [s["id"] for s in listing.json() if s["student"] == STUDENT]
    assert len(ids) == 1, listing.json()
    submission_id = ids[0]
    before = course_files(course)

    # 1. JupyterLab (this logs the browser in: the token in the URL sets the session cookie),
    #    with the autograded notebook open, as from the Formgrader's link to it.
    lab = context.new_page()
    lab.goto(f"{base}/lab/tree/autograded/{STUDENT}/{ASSIGNMENT}/{NOTEBOOK}?token={token}")
    lab.wait_for_selector(".jp-Notebook .jp-MarkdownCell", timeout=90_000)
    lab.wait_for_selector(".jp-Notebook .jp-OutputArea-output img", timeout=30_000)
    assert any(c["name"] == "_xsrf" for c in context.cookies()), "no _xsrf cookie to steal"

    # 2. The Formgrader's manual grading page of the submission.
    formgrader = context.new_page()
    formgrader.goto(f"{base}/formgrader/submissions/{submission_id}/", wait_until="load")
    formgrader.wait_for_selector("#notebook-container .cell", timeout=PAGE_TIMEOUT_MS)
    # The Formgrader's own scripts run: they fill in the autograded scores.
    formgrader.wait_for_function(
        "() => [...document.querySelectorAll('input.score')].some(i => i.value !== '')",
        timeout=30_000)

    # 3. The feedback: served by the Jupyter server, and opened from disk.
    served = context.new_page()
    served.goto(f"{base}/files/feedback/{STUDENT}/{ASSIGNMENT}/{NOTEBOOK_ID}.html", wait_until="load")
    local = context.new_page()
    local.goto(feedback.as_uri(), wait_until="load")

    pages = {"JupyterLab": lab, "Formgrader": formgrader, "feedback via /files": served,
             "feedback from disk": local}
    for page in pages.values():
        page.wait_for_timeout(SETTLE_MS // 3)
    clicked = {label: click_links(page) for label, page in pages.items() if page is not lab}
    lab.wait_for_timeout(SETTLE_MS)  # time for late payloads (timers, fetches, alerts)

    # --- No payload ran. ---
    ran = {label: pwned_in(page) for label, page in pages.items()}
    ran.update({f"popup {p.url[:80]}": pwned_in(p) for p in context.pages
                if p not in pages.values()})
    ran = {label: found for label, found in ran.items() if found}
    new_files = sorted(course_files(course) - before)
    problems = []
    if ran:
        problems.append(f"payloads ran: {ran}")
    if watch.dialogs:
        problems.append(f"dialogs opened: {watch.dialogs}")
    if watch.forbidden():
        problems.append(f"requests only a payload makes: {watch.forbidden()}")
    if new_files:
        problems.append(f"new files in the course folder: {new_files}")
    assert not problems, (
        "A hostile submission's content ran in the browser (payloads in the submission: "
        f"{names}):\n" + "\n".join(problems))
    leftover = [p.name for p in course.rglob("pwned*")]
    assert not leftover, leftover

    # --- The TP's own outputs still render. ---
    for label in ("Formgrader", "feedback via /files", "feedback from disk"):
        page = pages[label]
        images = png_images(page, "img[src^='data:image/png']")
        assert len(images) >= png_outputs and all(images), \
            f"{label}: PNG figures {images}, expected {png_outputs} loaded"
        text = page.inner_text("body")
        assert SUCCESS in text, f"{label}: the check cell's message is missing"
        assert "removed by the grader" in text, f"{label}: the grader's notes are missing"
        assert "The decoder mirrors the encoder" in text, f"{label}: the student's notes are missing"
    lab_images = png_images(lab, ".jp-Notebook .jp-OutputArea-output img")
    assert len(lab_images) >= png_outputs and all(lab_images), lab_images
    assert SUCCESS in lab.inner_text(".jp-Notebook")

    print(f"\nhostile submission: {len(names)} payloads, none ran; links clicked {clicked}; "
          f"outside requests blocked: {len(set(watch.blocked))}; timings (s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
          + f", browser {time.perf_counter() - started:.0f}")
