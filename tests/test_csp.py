"""Defence in depth: the feedback and Formgrader pages refuse to run a script that slipped
through the sanitizer (vaetp.grading.csp)."""

from __future__ import annotations

import asyncio
import re

import nbformat
from test_sanitize import JS, _answer, feedback_page, formgrader_page

from vaetp.grading import csp


def _page_with_a_slipped_script() -> str:
    """A feedback page in which a student's script got through (unsanitized on purpose)."""
    nb = nbformat.v4.new_notebook(cells=[_answer(f"<script>{JS}</script> $\\mu(x)$")])
    return feedback_page(nb)


def test_a_feedback_page_keeps_no_script_and_declares_a_policy_that_runs_none():
    page = _page_with_a_slipped_script()
    assert "<script" in page.split("<body", 1)[0]  # nbconvert's MathJax loader and config
    protected = csp.protect_feedback_page(page)
    head = protected.split("<body", 1)[0]
    assert "<script" not in head
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', protected)
    assert meta and protected.index(meta.group(0)) < protected.index("<title>")
    policy = meta.group(1)
    for directive in ("default-src 'none'", "script-src 'none'", "object-src 'none'",
                      "base-uri 'none'", "form-action 'none'", "frame-src 'none'"):
        assert directive in policy, directive
    assert "http" not in policy and "unsafe-eval" not in policy
    assert csp.protect_feedback_page(protected) == protected
    assert "$\\mu(x)$" in protected  # maths as its TeX text


def test_the_formgrader_policy_allows_its_own_head_scripts_by_hash_and_nothing_inline_else():
    nb = nbformat.v4.new_notebook(cells=[_answer(f"<script>{JS}</script>")])
    page = formgrader_page(nb)
    policy = csp.formgrader_policy(page)
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src"))
    head_scripts = [m.group(2) for m in csp._SCRIPT.finditer(page.split("<body", 1)[0])
                    if "src=" not in m.group(1)]
    assert any("submission_id" in s for s in head_scripts)
    for script in head_scripts:
        assert csp._sha256(script) in script_src
    assert csp._sha256(JS) not in script_src
    assert "'unsafe-inline'" not in script_src and "unsafe-eval" not in policy
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'self'"):
        assert directive in policy
    # a page not seen in full gets no hash at all
    assert csp._sha256(head_scripts[0]) not in csp.formgrader_policy(None)


def test_the_server_extension_sets_the_policy_on_submission_pages_only():
    import tornado.web
    from tornado.httpclient import AsyncHTTPClient
    from tornado.testing import bind_unused_port

    class Page(tornado.web.RequestHandler):
        def get(self, *_):
            self.set_header("Content-Security-Policy", "frame-ancestors 'self'")
            self.write("<html><head><script>var a = 1;</script></head><body>x</body></html>")

    class ServerApp:  # what _load_jupyter_server_extension uses of Jupyter's ServerApp
        web_app = tornado.web.Application([(r"/formgrader/submissions/(\w+)/", Page),
                                           (r"/lab", Page)])

        class log:
            info = staticmethod(lambda *a: None)

    csp._load_jupyter_server_extension(ServerApp)

    async def fetch_both():
        sock, port = bind_unused_port()
        server = tornado.httpserver.HTTPServer(ServerApp.web_app)
        server.add_sockets([sock])
        client = AsyncHTTPClient()
        try:
            return [await client.fetch(f"http://127.0.0.1:{port}{path}")
                    for path in ("/formgrader/submissions/abc/", "/lab")]
        finally:
            server.stop()

    import tornado.httpserver

    submission, lab = asyncio.run(fetch_both())
    assert csp._sha256("var a = 1;") in submission.headers["Content-Security-Policy"]
    assert "object-src 'none'" in submission.headers["Content-Security-Policy"]
    assert lab.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
