"""Plain-HTML pages of the demo provider: login, consent, device, callback.

No external resources, no JavaScript needed (the callback page has one inline
line that shows the URL fragment, which never reaches the server). Form
actions are relative so the pages also work behind jupyter-server-proxy.
"""

from __future__ import annotations

from html import escape
from typing import Iterable, Mapping

__all__ = ["login_page", "consent_page", "device_page", "message_page", "callback_page"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:34rem;margin:3rem auto;
padding:0 1rem;color:#1f2328;line-height:1.45}
h1{font-size:1.4rem} .box{border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem}
label{display:block;margin:.6rem 0 .2rem} input[type=text],input[type=password]{width:100%;
padding:.45rem;font-size:1rem;box-sizing:border-box} button{padding:.5rem 1.1rem;font-size:1rem;
margin:.8rem .4rem 0 0;cursor:pointer} .approve{background:#1f883d;color:#fff;border:0;border-radius:6px}
.deny{background:#fff;border:1px solid #cf222e;color:#cf222e;border-radius:6px}
.error{color:#cf222e} code,.url{font-family:ui-monospace,monospace;background:#f6f8fa;padding:.1rem .3rem;
word-break:break-all} .url{display:block;padding:.6rem;border:1px solid #d0d7de;border-radius:6px}
.muted{color:#59636e;font-size:.9rem} table{border-collapse:collapse} td{padding:.1rem .8rem .1rem 0}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{escape(title)} · nb_oauth2 demo</title><style>{_STYLE}</style></head>"
        f"<body><p class=\"muted\">nb_oauth2 demo provider</p><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _users_table(users: Mapping[str, str]) -> str:
    rows = "".join(f"<tr><td><code>{escape(u)}</code></td><td><code>{escape(p)}</code></td></tr>"
                   for u, p in users.items())
    return f"<p class=\"muted\">Demo users (username / password):</p><table>{rows}</table>"


def _hidden(form_id: str, step: str) -> str:
    return (f"<input type=\"hidden\" name=\"form_id\" value=\"{escape(form_id)}\">"
            f"<input type=\"hidden\" name=\"step\" value=\"{escape(step)}\">")


def _credentials(username: str) -> str:
    return (f"<label for=\"username\">Username</label><input type=\"text\" id=\"username\" "
            f"name=\"username\" value=\"{escape(username)}\" autocomplete=\"username\" required>"
            "<label for=\"password\">Password</label><input type=\"password\" id=\"password\" "
            "name=\"password\" autocomplete=\"current-password\" required>")


def login_page(*, form_id: str, action: str, client_name: str, scopes: Iterable[str],
               users: Mapping[str, str], error: str | None = None, username: str = "") -> str:
    """Username/password form for an authorization request."""
    err = f"<p class=\"error\">{escape(error)}</p>" if error else ""
    scope_text = ", ".join(escape(s) for s in scopes) or "(none)"
    body = (
        f"<p><b>{escape(client_name)}</b> asks to sign you in. Scopes: {scope_text}</p>{err}"
        f"<form method=\"post\" action=\"{escape(action)}\" class=\"box\">{_hidden(form_id, 'login')}"
        f"{_credentials(username)}<button type=\"submit\" class=\"approve\">Sign in</button></form>"
        f"{_users_table(users)}"
    )
    return _page("Sign in", body)


def consent_page(*, form_id: str, action: str, client_name: str, scopes: Iterable[str],
                 username: str) -> str:
    """Approve / Deny page."""
    items = "".join(f"<li><code>{escape(s)}</code></li>" for s in scopes) or "<li>(no scopes)</li>"
    body = (
        f"<p>Signed in as <b>{escape(username)}</b>.</p>"
        f"<p><b>{escape(client_name)}</b> would like to:</p><ul>{items}</ul>"
        f"<form method=\"post\" action=\"{escape(action)}\">{_hidden(form_id, 'consent')}"
        "<button type=\"submit\" name=\"decision\" value=\"approve\" class=\"approve\">Approve</button>"
        "<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"deny\">Deny</button></form>"
    )
    return _page("Authorize access", body)


def device_page(*, users: Mapping[str, str], user_code: str = "", error: str | None = None) -> str:
    """Enter the code shown on the device, then sign in."""
    err = f"<p class=\"error\">{escape(error)}</p>" if error else ""
    body = (
        f"<p>Enter the code shown by your notebook or device.</p>{err}"
        "<form method=\"post\" action=\"device\" class=\"box\">"
        "<input type=\"hidden\" name=\"step\" value=\"login\">"
        "<label for=\"user_code\">Code</label><input type=\"text\" id=\"user_code\" name=\"user_code\" "
        f"value=\"{escape(user_code)}\" autocomplete=\"off\" required>{_credentials('')}"
        "<button type=\"submit\" class=\"approve\">Continue</button></form>"
        f"{_users_table(users)}"
    )
    return _page("Connect a device", body)


def message_page(title: str, message: str) -> str:
    """A page with one message (device done, errors)."""
    return _page(title, f"<p>{escape(message)}</p>")


def callback_page(url: str) -> str:
    """Shows the full URL this page was reached with, to paste back into the notebook."""
    body = (
        "<p>Copy this whole address and paste it into the box in your notebook:</p>"
        f"<p id=\"url\" class=\"url\">{escape(url)}</p>"
        "<p class=\"muted\">It is also in your browser's address bar. It holds a one-time code: "
        "do not share it.</p>"
        "<script>document.getElementById('url').textContent=window.location.href;</script>"
    )
    return _page("Almost done", body)
