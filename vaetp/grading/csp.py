"""Content-Security-Policy for the pages that show a student's work: defence in depth behind
`sanitize.SanitizeOutputs`. Should a script slip through the sanitizer, the browser still
refuses to run it, so it cannot call the Formgrader or contents API with the instructor's session.

- Feedback pages (`make feedback`, tools/grade.py): `protect_feedback_page` drops the page's
  own scripts (nbconvert's MathJax loader from a CDN and its configuration) and adds a
  `<meta http-equiv="Content-Security-Policy">` that allows no script at all, no object, no
  frame, no form, no `<base>`, and nothing from another origin (images and fonts only inline).
  Maths is shown as its TeX text.
- Formgrader pages: this module is also a Jupyter Server extension
  (`c.ServerApp.jpserver_extensions = {"vaetp.grading.csp": True}`, as in the course's
  jupyter_server_config.py). On the Formgrader's submission pages (`/formgrader/submissions/...`),
  where a student's notebook is shown, it replaces Jupyter Server's header by a policy that
  allows only scripts from the server itself and the Formgrader's own inline scripts, by hash:
  those in the page's `<head>`, which the Formgrader's template writes before any cell of the
  notebook, and its two `onclick` handlers (`toggle_name`). No `unsafe-inline`, no
  `unsafe-eval`, `object-src 'none'`, `base-uri 'none'`, no other origin.
  The page's MathJax comes from the server itself, not a CDN (`local_mathjax`): the Formgrader's
  scripts wait for MathJax before they set up its keyboard shortcuts. The cells' maths needs no
  MathJax: `sanitize` stores it as MathML.
"""

from __future__ import annotations

import base64
import hashlib
import re

FEEDBACK_POLICY = ("default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; "
                   "base-uri 'none'; form-action 'none'; img-src data:; font-src data:; "
                   "style-src 'unsafe-inline'")
# The Formgrader's own inline event handlers (nbgrader's formgrade_macros.html.j2).
FORMGRADER_HANDLERS = ("toggle_name(true);", "toggle_name(false);")
FORMGRADER_PATH = re.compile(r"/formgrader/submissions/[^/]+/?$")
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
_HEAD = re.compile(r"<head\b[^>]*>", re.I)
#: nbconvert's MathJax loader (a CDN) and its configuration block, which MathJax runs with
#: `eval` (refused by the policy: no `unsafe-eval`).
_CDN_MATHJAX = re.compile(r'<script\s+src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/'
                          r'[^"]*"\s*>\s*</script>', re.I)
_MATHJAX_CONFIG = re.compile(r'<script\s+type="text/x-mathjax-config"\s*>.*?</script\s*>',
                             re.I | re.S)
#: MathJax 2 as the jupyter_server_mathjax extension serves it, with its "Safe" extension.
LOCAL_MATHJAX = "static/jupyter_server_mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
#: Its configuration, served by this extension (a script from the server, not inline): MathJax
#: typesets nothing on the page. The cells' maths is MathML already, which the browser lays out;
#: the Formgrader only needs MathJax's start-up signal.
MATHJAX_CONFIG = "vaetp/formgrader-mathjax-config.js"
MATHJAX_CONFIG_JS = "window.MathJax = {skipStartupTypeset: true, messageStyle: 'none'};\n"


def local_mathjax(page: str, base_url: str = "/") -> str:
    """A Formgrader page that loads MathJax and its configuration from the server
    (`base_url`), without the configuration block MathJax would `eval`."""
    base = base_url.rstrip("/") + "/"
    scripts = (f'<script src="{base}{MATHJAX_CONFIG}"></script>\n'
               f'<script src="{base}{LOCAL_MATHJAX}"></script>')
    page = _CDN_MATHJAX.sub(lambda _: scripts, page, count=1)
    return _MATHJAX_CONFIG.sub("", page, count=1)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def protect_feedback_page(page: str) -> str:
    """A feedback page with no script of its own and a policy that runs none (a page already
    protected is returned as it is)."""
    if FEEDBACK_POLICY in page:
        return page
    head_end = page.lower().find("<body")
    head, body = (page[:head_end], page[head_end:]) if head_end >= 0 else ("", page)
    head = _SCRIPT.sub("", head)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{FEEDBACK_POLICY}">'
    found = _HEAD.search(head)
    if found is None:
        return meta + "\n" + head + body
    return head[:found.end()] + "\n" + meta + head[found.end():] + body


def formgrader_policy(page: str | None) -> str:
    """The policy of a Formgrader submission page: its head's inline scripts by hash (none if
    the page is not known in full)."""
    hashes = []
    if page is not None:
        head_end = page.lower().find("<body")
        head = page[:head_end] if head_end >= 0 else ""
        hashes = sorted({_sha256(m.group(2)) for m in _SCRIPT.finditer(head)
                         if not re.search(r"\bsrc\s*=", m.group(1), re.I)})
    handlers = [_sha256(h) for h in FORMGRADER_HANDLERS]
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' 'unsafe-hashes' " + " ".join(hashes + handlers),
        "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "font-src 'self' data:",
        "connect-src 'self'", "object-src 'none'", "frame-src 'none'", "base-uri 'none'",
        "form-action 'self'", "frame-ancestors 'self'",
    ])


def _transform_class(base_url: str = "/"):
    from tornado.web import OutputTransform

    class FormgraderPolicy(OutputTransform):
        """Sets the policy on the Formgrader's submission pages (a tornado output transform)."""

        def __init__(self, request):
            super().__init__(request)
            self.applies = bool(FORMGRADER_PATH.search(request.path))

        def transform_first_chunk(self, status_code, headers, chunk, finishing):
            if self.applies and "html" in headers.get("Content-Type", ""):
                text = None
                if finishing:  # the whole page: MathJax from the server, then its policy
                    text = local_mathjax(chunk.decode("utf-8", "replace"), base_url)
                    chunk = text.encode("utf-8")
                    if "Content-Length" in headers:
                        headers["Content-Length"] = str(len(chunk))
                headers["Content-Security-Policy"] = formgrader_policy(text)
            return status_code, headers, chunk

    return FormgraderPolicy


def _config_handler_class():
    from tornado.web import RequestHandler

    class MathJaxConfig(RequestHandler):
        """The Formgrader's MathJax configuration (MATHJAX_CONFIG_JS): a constant."""

        def get(self):
            self.set_header("Content-Type", "application/javascript; charset=utf-8")
            self.write(MATHJAX_CONFIG_JS)

    return MathJaxConfig


def _jupyter_server_extension_points():
    return [{"module": "vaetp.grading.csp"}]


def _load_jupyter_server_extension(serverapp) -> None:
    base_url = serverapp.web_app.settings.get("base_url", "/")
    serverapp.web_app.transforms.insert(0, _transform_class(base_url))  # before any compression
    serverapp.web_app.add_handlers(".*$", [(base_url.rstrip("/") + "/" + MATHJAX_CONFIG,
                                            _config_handler_class())])
    serverapp.log.info("vaetp.grading.csp: Content-Security-Policy and a local MathJax on the "
                       "Formgrader's submission pages")
