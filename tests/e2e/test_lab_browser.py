"""The student's path in JupyterLab 4, in a real browser (Debian's Chromium driven by Playwright).

JupyterLab serves a copy of the course (notebooks/ and solutions/, as in the repository) on
127.0.0.1 in fast mode (VAE_TP_FAST=1). The test opens the student notebook, checks that every
image renders, loads the solution the student's way (uncomments `# %load ../solutions/...` and
runs the cell twice), runs the whole TP from the Run menu, checks the check cell's success message
and the mosaic figure, answers the five questions (double-click, type, render), validates with
the nbgrader Lab extension's Validate button, and saves
screenshots (build/e2e/screenshots/, or the folder VAE_TP_E2E_SCREENSHOTS names: the README's are
images/screenshots/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from e2e_support import CHROMIUM_ARGS, jupyter_lab

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vaetp.checks import SUCCESS  # noqa: E402

NOTEBOOK = "vae_tp.ipynb"
LOAD_LINE = "# %load ../solutions/decoder_vae.py"
LOAD = LOAD_LINE[2:]  # in the exercise cell before and after the edit, and after %load ran
CHROMIUM = os.environ.get("VAE_TP_CHROMIUM", "/usr/bin/chromium")
# The whole test is bounded: JupyterLab start, fast run of the TP, validation.
RUN_TIMEOUT_MS = 420_000


def screenshot_dir() -> Path:
    """VAE_TP_E2E_SCREENSHOTS (`make e2e E2E_SCREENSHOTS=images/screenshots` refreshes the README's)."""
    path = Path(os.environ.get("VAE_TP_E2E_SCREENSHOTS", REPO / "build" / "e2e" / "screenshots"))
    path = path if path.is_absolute() else REPO / path
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 serving a copy of the course; yields (base URL, token, course dir)."""
    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)
    # VAE_TP_E2E_NOTEBOOK: try another version of the student notebook (default: the repository's).
    student = Path(os.environ.get("VAE_TP_E2E_NOTEBOOK", REPO / "notebooks" / NOTEBOOK))
    shutil.copytree(REPO / "solutions", course / "solutions")
    # The student has done the other exercises already; the decoder is loaded in the browser.
    from run_notebook import load_solutions

    released = nbformat.read(student, as_version=4)
    solved = load_solutions(released, course / "notebooks")
    for mine, theirs in zip(solved.cells, released.cells):
        if LOAD_LINE in theirs.source:
            mine.source = theirs.source
    nbformat.write(solved, course / "notebooks" / NOTEBOOK)

    # A fresh user: no settings, workspaces or config of the machine's user; no news, no update check.
    settings = tmp_path / "lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    log = tmp_path / "jupyter-lab.log"
    try:
        with jupyter_lab(course / "notebooks", tmp_path, log, settings,
                         env={"VAE_TP_FAST": "1", "VAE_TP_FIGURES": None}) as (base, token):
            yield base, token, course
    finally:
        if log.exists():
            out = REPO / "build" / "e2e"
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, out / "jupyter-lab.log")


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            # Playwright gives each launch a fresh, empty profile (its own --user-data-dir).
            args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.e2e_errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            out = REPO / "build" / "e2e"
            out.mkdir(parents=True, exist_ok=True)
            try:  # the page as it was at the end (at a failure), for the CI log's reader
                page.screenshot(path=str(out / "lab-last-page.png"))
            except Exception:
                pass
            context.close()
            browser.close()


def shrink_png(path: Path, max_bytes: int = 280_000) -> None:
    """Screenshots are committed for the README: palette PNGs, under 300 KB each (fewer colours,
    then a smaller size, for the mosaic's thousands of grey levels)."""
    from PIL import Image

    with Image.open(path) as image:
        original = image.convert("RGB")
    for scale, colors in ((1, 256), (1, 64), (0.75, 64), (0.5, 64)):
        image = original if scale == 1 else original.resize(
            (int(original.width * scale), int(original.height * scale)), Image.Resampling.LANCZOS)
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                       dither=Image.Dither.NONE).save(path, optimize=True)
        if path.stat().st_size < max_bytes:
            return
    raise AssertionError(f"{path} is {path.stat().st_size} bytes")


def screenshot(target, path: Path) -> None:
    target.screenshot(path=str(path))
    shrink_png(path)


def code_cell(page, text: str):
    """The code cell whose source contains `text`."""
    return page.locator(".jp-Notebook .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=text)).first


def click_menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def wait_idle(page, timeout_ms: int) -> None:
    """Until no cell is queued or running ("[*]") and the kernel reports idle."""
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt')];
            if (prompts.some(p => p.textContent.includes('*'))) return false;
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
            return !status || status.getAttribute('data-status') === 'idle';
        }""", timeout=timeout_ms, polling=500)


def scroll_and_check_images(page) -> dict[str, bool]:
    """Scroll the notebook top to bottom; return {image alt text: loaded and non-empty}."""
    scroller = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first
    page.evaluate("el => el.scrollTop = 0", scroller.element_handle())
    seen: dict[str, bool] = {}
    for _ in range(200):
        page.wait_for_timeout(250)
        try:  # give the images now in the page a moment to decode
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-Notebook .jp-RenderedMarkdown img')]"
                ".every(img => img.complete)", timeout=10_000)
        except Exception:
            pass
        for alt, ok in page.evaluate(
                "() => [...document.querySelectorAll('.jp-Notebook .jp-RenderedMarkdown img')]"
                ".map(img => [img.alt || img.src.slice(0, 60), img.complete && img.naturalWidth > 0])"):
            seen[alt] = seen.get(alt, False) or ok
        at_end = page.evaluate(
            "el => { const before = el.scrollTop; el.scrollTop += el.clientHeight * 0.8;"
            " return el.scrollTop === before; }", scroller.element_handle())
        if at_end:
            break
    page.evaluate("el => el.scrollTop = 0", scroller.element_handle())
    page.wait_for_timeout(500)
    return seen


def test_student_runs_the_tp_in_jupyterlab(lab, page):
    base, token, course = lab
    started = time.perf_counter()
    shots = screenshot_dir()

    # 1. The student opens the notebook; the kernel starts.
    page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-MarkdownCell", timeout=90_000)
    page.wait_for_function(
        "() => { const s = document.querySelector('.jp-Notebook-ExecutionIndicator');"
        " return s && s.getAttribute('data-status') === 'idle'; }", timeout=90_000)
    # The nbgrader Lab extension is active: its Validate button is in the notebook's toolbar.
    page.wait_for_selector(".validate-button", timeout=30_000)

    # 2. Every image of the notebook renders. JupyterLab renders the cells near the viewport
    #    only, so scroll the notebook from top to bottom, as a reader does, checking each image.
    expected = sum(len(cell.get("attachments", {}))
                   for cell in json.loads((course / "notebooks" / NOTEBOOK).read_text())["cells"])
    assert expected >= 2, "the notebook's diagrams are cell attachments"
    seen = scroll_and_check_images(page)
    broken = [alt for alt, ok in seen.items() if not ok]
    assert not broken, f"broken images: {broken}"
    assert len(seen) >= expected, f"{len(seen)} images rendered ({list(seen)}), the notebook has {expected} attachments"
    page.locator(".jp-Notebook .jp-Cell").first.scroll_into_view_if_needed()
    screenshot(page, shots / "lab-notebook-opened.png")

    # 3. Load the solution the student's way: uncomment the %load line...
    exercise = code_cell(page, LOAD)
    exercise.scroll_into_view_if_needed()
    assert LOAD_LINE in exercise.locator(".cm-content").text_content()
    exercise.locator(".cm-content").click()
    page.keyboard.press("Control+Home")
    page.keyboard.press("Delete")
    page.keyboard.press("Delete")
    first_line = exercise.locator(".cm-line").first.text_content()
    assert first_line.strip() == LOAD, first_line

    # ...run everything above it (Run menu), then the cell twice: the first run replaces the
    # cell with the file, the second runs it.
    click_menu(page, "Run", "Run All Above Selected Cell")
    wait_idle(page, RUN_TIMEOUT_MS)
    exercise.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    code_cell(page, "keras.Model(latent_inputs").wait_for(timeout=30_000)
    wait_idle(page, 60_000)
    exercise.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    wait_idle(page, 60_000)

    # 4. Run the rest of the TP (fast mode).
    click_menu(page, "Run", "Run Selected Cell and All Below")
    last = page.locator(".jp-Notebook .jp-CodeCell").last
    page.wait_for_function(
        "cell => /\\[\\d+\\]/.test(cell.querySelector('.jp-InputArea-prompt').textContent)",
        arg=last.element_handle(), timeout=RUN_TIMEOUT_MS, polling=1000)
    wait_idle(page, 60_000)
    outputs = page.locator(".jp-Notebook .jp-OutputArea").all_text_contents()
    assert not any("Traceback" in text or "NotImplementedError" in text for text in outputs), \
        "a cell raised:\n" + "\n".join(t for t in outputs if "Error" in t)[:3000]

    # 5. The check cell says the decoder is right; the mosaic is drawn.
    check = code_cell(page, "checks.check_decoder(")
    check.scroll_into_view_if_needed()
    assert SUCCESS in check.locator(".jp-OutputArea").text_content()
    page.wait_for_timeout(500)
    screenshot(check, shots / "lab-check-cell-success.png")
    mosaic = code_cell(page, "plots.digit_mosaic(")
    mosaic.scroll_into_view_if_needed()
    figure = mosaic.locator(".jp-OutputArea img").first
    figure.wait_for(timeout=30_000)
    assert page.wait_for_function("img => img.complete && img.naturalWidth > 300",
                                  arg=figure.element_handle(), timeout=15_000)
    page.wait_for_timeout(500)
    screenshot(mosaic, shots / "lab-mosaic.png")

    # 6. Answer the questions (markdown cells graded by hand), as a student does: double-click
    #    the rendered "YOUR ANSWER HERE", replace it, render the cell.
    answered = 0
    while True:
        todo = page.locator(".jp-Notebook .jp-MarkdownCell .jp-RenderedMarkdown",
                            has_text=re.compile(r"^\s*YOUR ANSWER HERE\s*$"))
        if todo.count() == 0:
            break
        cell = todo.first
        cell.scroll_into_view_if_needed()
        cell.dblclick()
        editor = page.locator(".jp-Notebook .jp-MarkdownCell:not(.jp-mod-rendered) .cm-content").first
        editor.wait_for(timeout=10_000)
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.type(f"My answer {answered + 1}: the figure shows what the text predicts.")
        page.keyboard.press("Shift+Enter")
        answered += 1
        assert answered <= 10, "a question cell keeps its stub"
    assert answered == 5, answered

    # 7. nbgrader's Validate button (saves, then runs the notebook's tests on the server).
    page.locator(".validate-button jp-button, .validate-button button").first.click()
    result = page.locator(".validation-success, .validation-failed, .jp-Dialog-body pre")
    result.first.wait_for(timeout=RUN_TIMEOUT_MS)
    dialog = page.locator(".jp-Dialog-content").first
    text = dialog.text_content()
    assert "Success! Your notebook passes all the tests." in text, text[:3000]
    screenshot(dialog, shots / "lab-validate-success.png")
    page.locator(".jp-Dialog-button.jp-mod-accept").first.click()

    assert not page.e2e_errors, page.e2e_errors  # type: ignore[attr-defined]
    print(f"\nJupyterLab student path: {time.perf_counter() - started:.0f} s")
