"""Which nb_oauth2 modules hold the login's secrets from the paste box to a read_json request.

Signs in to the embedded demo provider through the login widget's paste box (driven from Python),
then reads one API page with read_json. A trace function (``sys.settrace``, every thread) records
the strings in the local variables of every nb_oauth2 function it enters or leaves; afterwards the
functions that held the pasted redirect, its code or the access token (as a string, or inside a
dict or a Token) are listed by module. ``NB_TRACE_HOLDERS=1`` also counts frames that hold a
Session (which keeps the token).

    python benchmarks/trace_token_path.py
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import nb_oauth2 as oa
from nb_oauth2.jupyter.widgets import LoginWidget

HOLDERS = os.environ.get("NB_TRACE_HOLDERS") == "1"
strings_seen: dict[tuple[str, str], set[str]] = {}


def strings(value: Any, depth: int = 0) -> Iterator[str]:
    """The strings in ``value``: itself, a dict's or sequence's items, a Token's access token."""
    if depth > 2:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in list(value.values())[:50]:
            yield from strings(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value[:50]:
            yield from strings(item, depth + 1)
    elif type(value).__name__ == "Token":
        yield from strings(getattr(value, "access_token", None), depth + 1)
    elif HOLDERS and type(value).__name__ in ("Session", "BearerAuth"):
        yield from strings(getattr(getattr(value, "token_info", None), "access_token", None), depth + 1)


def tracer(frame: Any, event: str, arg: Any) -> Any:
    module = frame.f_globals.get("__name__") or ""
    if module.startswith("nb_oauth2") and not module.startswith("nb_oauth2.demo") and event in ("call", "return"):
        bucket = strings_seen.setdefault((module, frame.f_code.co_name), set())
        for value in list(frame.f_locals.values()) + ([arg] if event == "return" else []):
            bucket.update(s for s in strings(value) if len(s) >= 8)
    return tracer


def main() -> None:
    demo = oa.running_demo()
    attempt = oa.LoginAttempt("demo")
    widget = LoginWidget(attempt, via="paste")
    redirect = demo.driver.authorize(attempt.step.authorization_url)  # the browser's part
    sys.settrace(tracer)
    threading.settrace(tracer)
    try:
        widget._paste.value = redirect  # what the user pastes (the box submits on change)
        widget._on_submit_click(None)
        frame = oa.read_json(demo.url + "/api/events?per_page=5", session=attempt.session, max_pages=1,
                             partial=True, progress=False)
    finally:
        sys.settrace(None)
        threading.settrace(None)
    secrets = [redirect, parse_qs(urlsplit(redirect).query)["code"][0], attempt.session.token_info.access_token]
    held: dict[str, set[str]] = {}
    for (module, function), values in strings_seen.items():
        if any(secret in value for value in values for secret in secrets):
            held.setdefault(module, set()).add(function)
    print(f"rows read: {len(frame)}")
    print(f"{len(held)} modules hold the pasted redirect, the code or the token:")
    for module, functions in held.items():
        print(f"  {module}: {', '.join(sorted(functions))}")


if __name__ == "__main__":
    main()
