"""The login widget's words and HTML pieces: plain-language hints, the device code with its copy button,
the pending line, absolute expiry times. Pure functions of what the attempt holds; every value that comes
from outside (provider, pasted text) is escaped here, once.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..core.redact import redact

if TYPE_CHECKING:
    from ..core.flows import Step

__all__ = ["LINK_STYLE", "is_web_link", "device_link", "device_link_html", "shown", "how_html", "code_html",
           "pending_html", "until", "elapsed", "echo", "STALE_SECONDS"]

#: the sign-in link looks like a button (JupyterLab shows plain anchors as body text)
LINK_STYLE = ("display:inline-block;padding:4px 14px;margin:4px 0;border-radius:4px;background:#1976d2;"
              "color:#fff;text-decoration:none;font-weight:600")
#: the pending line is rewritten every second; this long without a rewrite, it says the kernel is gone
STALE_SECONDS = 10


def is_web_link(uri: object) -> bool:
    """An absolute http(s) URL with a host and no whitespace or control characters (case 60)."""
    if not isinstance(uri, str) or not uri or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        return False
    parts = urlsplit(uri)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def device_link(step: "Step") -> str | None:
    """The device page to link to: ``verification_uri_complete``, else ``verification_uri``, if http(s)."""
    for uri in (step.verification_uri_complete, step.verification_uri):
        if is_web_link(uri):
            return uri
    return None


def shown(uri: object, limit: int = 120) -> str:
    text = redact(str(uri or ""))
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def device_link_html(step: "Step") -> str:
    """The device page as a link, or as escaped text with a warning when it is not http(s) (case 60)."""
    link = device_link(step)
    label = step.verification_uri if is_web_link(step.verification_uri) else link
    bad = [u for u in (step.verification_uri, step.verification_uri_complete) if u and not is_web_link(u)]
    warning = ""
    if bad:
        warning = (f'<br><small style="color:#b00020">The provider sent a verification address that is not an '
                   f"http(s) web address, so it is not a link: <code>{html.escape(shown(bad[0]))}</code>. "
                   + ("Enter the code on the page above.</small>" if link else
                      "Open your provider's device page yourself.</small>"))
    if link is None:
        return f"<span>your provider's device page</span>{warning}"
    return (f'<a href="{html.escape(link, quote=True)}" target="_blank" rel="noopener noreferrer" '
            f'style="{LINK_STYLE}">{html.escape(label or link)} ↗</a>{warning}')


_COPY_JS = ("var b=this,c=b.dataset.code,s=b.previousElementSibling;"
            "function sel(){var r=document.createRange();r.selectNodeContents(s);"
            "var g=window.getSelection();g.removeAllRanges();g.addRange(r);b.textContent='Selected: press Ctrl+C';}"
            "if(navigator.clipboard){navigator.clipboard.writeText(c).then(function(){b.textContent='Copied';},sel);}"
            "else{sel();}")


def code_html(user_code: str) -> str:
    """The device code, selectable at one click, with a copy button that needs no kernel (pure HTML/JS:
    it works while a cell blocks and in a saved notebook). The code travels in a data attribute, never
    inside the script, so a hostile code cannot inject script."""
    code = html.escape(user_code or "", quote=True)
    return (f"Enter the code <code style=\"font-size:1.3em;user-select:all;padding:0 4px\">{code}</code>"
            f'<button class="nb-oauth2-copy" type="button" data-code="{code}" onclick="{html.escape(_COPY_JS)}" '
            f'style="margin-left:8px">Copy code</button> at')


def how_html(via: str, reason: str, redirect_uri: str, *, prompt: bool = False) -> str:
    """How this login's redirect comes back, in plain words (the attempt's ``via`` and ``via_reason``);
    ``prompt``: the paste goes into the prompt under the widget (the cell waits), not into a paste box."""
    where = "into the prompt that appears below" if prompt else "below"
    if via in ("loopback", "proxy"):
        route = ("this kernel listens for it on a local (loopback) port" if via == "loopback" else
                 "it reaches this kernel through the Jupyter server (jupyter-server-proxy)")
        text = f"After you sign in, your browser comes back here by itself: {route}."
        if not prompt:
            text += " If it does not, paste the address your browser shows below."
        return f"<small>{html.escape(text)}</small>"
    why = _why(reason)
    text = (f"After you sign in, your browser goes to an address starting with {redirect_uri}. It may say the "
            f"site can't be reached: that is expected. Copy the whole address from the address bar and paste it "
            f"{where}, then press Enter.")
    return f"<small>{html.escape(text)}" + (f"<br>{html.escape(why)}" if why else "") + "</small>"


def _why(reason: str) -> str:
    """The reason for paste-back as a sentence: ``chosen with via='paste'`` -> you asked for it."""
    reason = (reason or "").strip()
    if not reason:
        return ""
    if reason.startswith("chosen with via="):
        return f"Pasting back because you asked for it ({reason.split(' ', 2)[-1]})."
    return "Why not automatically: " + reason.rstrip(".") + "."


def elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def pending_html(text: str, seconds: float) -> str:
    """The pending line with its elapsed time. It is rewritten every second; when the rewrites stop (the
    kernel restarted or stopped, or the notebook was reopened from its saved state), a CSS animation shows,
    after :data:`STALE_SECONDS`, that this login is no longer alive: no script, no message needed."""
    return ("<style>@keyframes nb-oauth2-stale{to{visibility:visible;font-size:small}}</style>"
            f"<span>{html.escape(text)} {elapsed(seconds)}</span>"
            '<span class="nb-oauth2-stale" style="visibility:hidden;font-size:0;color:#b00020;'
            f'animation:nb-oauth2-stale 0s linear {STALE_SECONDS}s forwards"><br>This login is not connected to a '
            "running kernel any more (the kernel restarted or stopped): run the cell again to sign in.</span>")


def until(expires_in: float | None, now: float | None = None) -> str:
    """``"until 14:05"`` (local time; with the date when not today), or ``"no known expiry"``."""
    if expires_in is None:
        return "no known expiry"
    now = time.time() if now is None else now
    if expires_in <= 0:
        return "expired"
    at, today = time.localtime(now + expires_in), time.localtime(now)
    clock = time.strftime("%H:%M", at)
    if (at.tm_year, at.tm_yday) != (today.tm_year, today.tm_yday):
        clock = time.strftime("%d %b %Y %H:%M", at)
    return f"until {clock}"


def echo(text: str, limit: int = 60) -> str:
    """Pasted text as shown back: one line, redacted, at most ``limit`` characters (case 1)."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
