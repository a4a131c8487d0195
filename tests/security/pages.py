"""Helpers shared by the security tests: HTML inspection under the CSP."""

from html.parser import HTMLParser

EVENT_HANDLER_PREFIX = "on"


class InlineCodeFinder(HTMLParser):
    """Collect what a `script-src 'self'; style-src 'self'` policy would block."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.inline_scripts = []  # nonce of each inline script (None when absent)
        self.inline_styles = []
        self.style_attributes = []
        self.handlers = []
        self.javascript_urls = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src"):
            kind = (attributes.get("type") or "text/javascript").lower()
            # JSON data islands (json_script, the admin's constants) are not executed.
            if kind in ("text/javascript", "module", "application/javascript"):
                self.inline_scripts.append(attributes.get("nonce"))
        if tag == "style":
            self.inline_styles.append(attributes.get("nonce"))
        for name, value in attrs:
            if name == "style":
                self.style_attributes.append(f"<{tag} style={value!r}>")
            if name.startswith(EVENT_HANDLER_PREFIX):
                self.handlers.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.javascript_urls.append(f"<{tag} {name}={value!r}>")


def csp_directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def csp_problems(response) -> list[str]:
    """Return what in this HTML response the browser would block or that allows injection."""
    directives = csp_directives(response)
    nonce_sources = [s for s in directives.get("script-src", []) if s.startswith("'nonce-")]
    nonce = nonce_sources[0][len("'nonce-") : -1] if nonce_sources else None
    finder = InlineCodeFinder()
    finder.feed(response.content.decode("utf-8", "replace"))
    problems = []
    problems += [f"inline script without the response's nonce ({n!r})" for n in finder.inline_scripts if n != nonce]
    problems += [f"inline style without the response's nonce ({n!r})" for n in finder.inline_styles if n != nonce]
    problems += [f"style attribute {s}" for s in finder.style_attributes]
    problems += [f"event handler attribute {h}" for h in finder.handlers]
    problems += [f"javascript: URL {u}" for u in finder.javascript_urls]
    return problems
