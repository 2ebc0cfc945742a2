"""What redirect URI to register at a provider, per environment: one answer for the CLI, the magic and the widget.

``nb-oauth2 redirect-uri`` and ``%oauth2 redirect-uri`` print :func:`redirect_uri_advice`;
every login (widget, terminal, script: ``LoginAttempt.start(via)`` in ``nb_oauth2.auth.capture``)
decides with the same :func:`~nb_oauth2.core.loopback.choose_via`:

* local Jupyter: auto-capture on ``http://127.0.0.1:<free port>/callback`` (RFC 8252 7.3);
* JupyterHub/Binder with jupyter-server-proxy: the demo provider needs nothing registered and
  auto-captures through ``{prefix}proxy/<port>/callback`` on the hub's own address; other
  providers paste back (or auto-capture once the server's public URL is known);
* elsewhere (SSH, Colab, remote containers): paste-back.
"""

from __future__ import annotations

import os

from .loopback import choose_via, public_base_url

__all__ = ["redirect_uri_advice", "DEFAULT_REDIRECT_URI"]

#: what to register at a provider for paste-back logins outside the demo (``nb-oauth2 redirect-uri``)
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"


def _proxied_callback(prefix: str) -> str:
    return f"{prefix.rstrip('/')}/proxy/<port>/callback"


def redirect_uri_advice() -> list[str]:
    """Lines that say how the redirect comes back here and what to register, for this environment."""
    method, reason = choose_via("auto")
    paste = (f"register {DEFAULT_REDIRECT_URI}; after signing in, copy the address your browser shows "
             "(an error page is fine) into the login box")
    lines = [f"This environment: {method} ({reason})."]
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if method == "loopback":
        lines.append("Auto-capture: the browser comes back to http://127.0.0.1:<free port>/callback. Register "
                     f"{DEFAULT_REDIRECT_URI}: providers that follow RFC 8252 accept any port on 127.0.0.1; "
                     "if yours wants the exact port, log in with --via paste.")
    elif method == "proxy" and prefix:
        proxied = _proxied_callback(prefix)
        base = public_base_url()
        lines.append(f"Demo provider: nothing to register; auto-capture comes back through jupyter-server-proxy "
                     f"at {proxied} on this server's address (http or https).")
        if base:
            lines.append(f"Other providers, auto-capture: register {base.rstrip('/')}/proxy/<port>/callback "
                         "(the port is chosen per login: only for providers that accept any port).")
            lines.append(f"Other providers that want one exact URI: log in with --via paste and {paste}.")
        else:
            lines.append(f"Other providers, paste-back: {paste}; or set NB_OAUTH2_PUBLIC_URL to this server's "
                         "public URL for auto-capture.")
    else:
        lines.append(f"Paste-back: {paste}.")
        if prefix:
            lines.append("For auto-capture install jupyter-server-proxy in this server's environment: the redirect "
                         f"then comes back through {_proxied_callback(prefix)}.")
    return lines
