"""Defence in depth: the feedback and Formgrader pages refuse to run a script that slipped
through the sanitizer (vaetp.grading.csp)."""

from __future__ import annotations

import asyncio
import re

from pathlib import Path

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
    assert "$\\mu(x)$" in protected  # not sanitized here: its TeX text, which no script typesets


def test_the_formgrader_page_loads_mathjax_from_the_server_and_runs_no_eval():
    """Offline, the Formgrader's scripts wait for MathJax before they set up the keyboard
    shortcuts: MathJax comes from the Jupyter server (jupyter_server_mathjax), and the
    configuration block MathJax would `eval` is gone (the policy has no `unsafe-eval`)."""
    page = formgrader_page(nbformat.v4.new_notebook(cells=[_answer("$\\mu(x)$")]))
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" in page and "text/x-mathjax-config" in page
    local = csp.local_mathjax(page, "/hub/user/ana/")
    head = local.split("<body", 1)[0]
    assert "cdnjs" not in local and "text/x-mathjax-config" not in local
    assert ('<script src="/hub/user/ana/vaetp/formgrader-mathjax-config.js"></script>\n'
            '<script src="/hub/user/ana/static/jupyter_server_mathjax/MathJax.js?config='
            'TeX-AMS-MML_HTMLorMML-full,Safe"></script>') in head
    assert csp.local_mathjax(local, "/hub/user/ana/") == local
    config = csp._MATHJAX_CONFIG.search(page).group(0)
    inner = re.sub(r"^<script[^>]*>|</script>$", "", config)
    assert csp._sha256(inner) not in csp.formgrader_policy(local)
    import jupyter_server_mathjax

    served = Path(jupyter_server_mathjax.__file__).parent / "static"
    assert (served / "MathJax.js").is_file()
    for name in ("TeX-AMS-MML_HTMLorMML-full", "Safe"):
        assert (served / "config" / f"{name}.js").is_file() or \
            (served / "extensions" / f"{name}.js").is_file(), name


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
            self.write('<html><head><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/'
                       '2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"> </script>'
                       "<script>var a = 1;</script></head><body>x</body></html>")

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
                    for path in ("/formgrader/submissions/abc/", "/lab",
                                 "/vaetp/formgrader-mathjax-config.js")]
        finally:
            server.stop()

    import tornado.httpserver

    submission, lab, config = asyncio.run(fetch_both())
    assert csp._sha256("var a = 1;") in submission.headers["Content-Security-Policy"]
    assert "object-src 'none'" in submission.headers["Content-Security-Policy"]
    assert lab.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    body = submission.body.decode()
    assert '<script src="/static/jupyter_server_mathjax/MathJax.js?' in body and "cdnjs" not in body
    assert int(submission.headers["Content-Length"]) == len(submission.body)
    assert "cdnjs" in lab.body.decode()  # other pages as the server wrote them
    assert config.headers["Content-Type"].startswith("application/javascript")
    assert config.body.decode() == "window.MathJax = {skipStartupTypeset: true, messageStyle: 'none'};\n"
