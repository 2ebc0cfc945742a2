"""Small result objects of the ``%oauth2`` magics: HTML in notebooks, text in terminals."""

from __future__ import annotations

import html
from typing import Any, Sequence

from ..core.redact import redact

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
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        if not self.rows:
            return f"<p>{html.escape(repr(self))}</p>"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in self.rows)
        return f'<table class="nb-oauth2-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def status_table(sessions: Sequence[Any], default: str | None) -> Table:
    """One row per session: name, provider, scopes, expiry, fingerprint."""
    rows = []
    for item in sessions:
        info = item.status()
        name = info["name"] + (" *" if info["name"] == default else "")
        rows.append([name, info["provider"], info.get("grant") or "", info["scopes"], info["expiry"],
                     info["fingerprint"] or "-", "yes" if info.get("refreshable") else "no"])
    return Table(["session", "provider", "grant", "scopes", "expires", "fingerprint", "refreshable"], rows,
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
