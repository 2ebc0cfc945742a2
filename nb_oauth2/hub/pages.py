"""The service's few HTML pages: self-contained, no third-party resources, no secrets."""

from __future__ import annotations

import html

__all__ = ["page"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}"
          "h1{font-size:1.4em}.ok{color:#1a7f37}.err{color:#b42318}")


def page(title: str, message: str, *, ok: bool = True) -> str:
    """A small page; ``title`` and ``message`` are escaped here."""
    css = "ok" if ok else "err"
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='referrer' content='no-referrer'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1 class='{css}'>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>")
