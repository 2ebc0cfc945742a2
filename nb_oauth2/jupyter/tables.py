"""Small result objects of the ``%oauth2`` magics: HTML in notebooks, text in terminals."""

from __future__ import annotations

import html
from typing import Any, Sequence

from ..core.redact import redact
from .login_text import until

_CELL = "text-align:left;white-space:nowrap;padding:2px 10px 2px 0;vertical-align:top"
_CAPTION = "text-align:left;white-space:nowrap;font-weight:600;padding-bottom:4px"

__all__ = ["Table", "status_table", "providers_table"]


class Table:
    """Rows of plain values with a text repr and an HTML repr (no secrets by construction)."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "",
                 empty: str = "nothing to show") -> None:
        self.columns = list(columns)
        self.rows = [[redact("" if v is None else v) for v in row] for row in rows]
        self.title = title
        self.empty = empty

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        if not self.rows:
            return f"{self.title}: {self.empty}" if self.title else self.empty
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        line = "  ".join(c.ljust(w) for c, w in zip(self.columns, widths))
        body = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in self.rows]
        head = [self.title] if self.title else []
        return "\n".join([*head, line.rstrip(), "  ".join("-" * w for w in widths), *body])

    def _repr_html_(self) -> str:
        """Left-aligned cells that never wrap (JupyterLab right-aligns table cells by default)."""
        caption = f'<caption style="{_CAPTION}">{html.escape(self.title)}</caption>' if self.title else ""
        if not self.rows:
            return f"<p>{html.escape(repr(self))}</p>"
        head = "".join(f'<th style="{_CELL}">{html.escape(c)}</th>' for c in self.columns)
        body = "".join("<tr>" + "".join(f'<td style="{_CELL}">{html.escape(v)}</td>' for v in row) + "</tr>"
                       for row in self.rows)
        return (f'<table class="nb-oauth2-table" style="border-collapse:collapse;width:auto">{caption}<thead><tr>{head}'
                f"</tr></thead><tbody>{body}</tbody></table>")


def status_table(sessions: Sequence[Any], default: str | None, *, now: float | None = None) -> Table:
    """One row per session: name, who signed in (when known), provider, grant, scopes, until when, fingerprint.

    The user comes from :func:`nb_oauth2.auth.identity.who` (id_token claims, else one userinfo GET per
    session, cached); the expiry is a local clock time with the time left beside it.
    """
    from ..auth.identity import who

    rows = []
    for item in sessions:
        info = item.status()
        name = info["name"] + (" *" if info["name"] == default else "")
        expiry = f"{until(info['expires_in'], now)} ({info['expiry']})" if info["signed_in"] else info["expiry"]
        user = who(item) if info["signed_in"] else None
        rows.append([name, user or "-", info["provider"], info.get("grant") or "", info["scopes"], expiry,
                     info["fingerprint"] or "-", "yes" if info.get("refreshable") else "no"])
    return Table(["session", "user", "provider", "grant", "scopes", "expires", "fingerprint", "refreshable"], rows,
                 title="nb_oauth2 sessions (* = default)",
                 empty="no sessions; sign in with %oauth2 login <profile>")


def providers_table() -> Table:
    """The built-in provider presets and the demo."""
    from ..core.providers import PRESETS, preset

    rows = [["demo", "embedded demo provider on 127.0.0.1 (no account needed)", ""]]
    for name in PRESETS:
        try:
            found = preset(name)
            rows.append([name, found.authorization_endpoint or found.token_endpoint or "", found.docs])
        except Exception:  # presets that need an option (tenant=, base_url=)
            rows.append([name, "needs an option (tenant / base_url)", ""])
    return Table(["profile", "endpoint", "docs"], rows, title="Provider presets")
