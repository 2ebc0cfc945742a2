"""Every message the tutorials quote is what the code says (issue 12 item 4).

The convention, for notebooks/*.ipynb: in markdown, text in italics and double quotes, ``*"..."*``,
is a message users will see (an error, a widget line, a warning); it is read from the notebooks,
so a quote added there needs a trigger here. Quotes written otherwise are listed in ``OTHER_QUOTES``
with their notebook (the test fails when the notebook no longer says them). Each quote is checked
against the text the code produces when the error really happens: against the demo provider, or
the scripted loopback server (case-insensitive, so a quote may start mid-sentence; curly quotes and
runs of whitespace count as plain ones).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Callable

import pytest

import nb_oauth2 as oa
from nb_oauth2.auth import registry
from nb_oauth2.core.errors import AuthorizationDenied, InvalidCallbackURL, NoLoginInProgress
from tests.scripted_server import Reply

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
QUOTE = re.compile(r'\*"([^"*\n]+)"\*')  # *"what users see"*
#: quotes the notebooks write another way: (notebook, quote)
OTHER_QUOTES = [
    ("02_grants.ipynb", "no matching login in progress"),          # *no matching login in progress*
    ("03_tokens_over_time.ipynb", "may remain valid until it expires"),  # the revocation warning
]


def _markdown(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def quoted_messages() -> list[tuple[str, str]]:
    """(notebook, quote) for every ``*"..."*`` in the notebooks' markdown, and the OTHER_QUOTES."""
    found = []
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        for text in _markdown(notebook):
            found += [(notebook.name, " ".join(q.split())) for q in QUOTE.findall(text)]
    return sorted(set(found + OTHER_QUOTES))


def _normal(text: str) -> str:
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
    return " ".join(text.split()).casefold()


def _raised(action: Callable[[], object], kind: type[BaseException]) -> str:
    with pytest.raises(kind) as info:
        action()
    return str(info.value)


def _attempt(name: str) -> oa.LoginAttempt:
    attempt = oa.LoginAttempt("demo", name=name)
    attempt.start()
    return attempt


# -- triggers: each makes the situation a quote describes happen for real, and returns what users see ----


def not_a_redirect(demo, scripted) -> list[str]:
    attempt = _attempt("t-garbage")
    return [_raised(lambda: attempt.complete_redirect("hello world"), InvalidCallbackURL),
            _raised(lambda: attempt.complete_redirect("https://example.com/"), oa.CallbackError)]


def no_matching_login(demo, scripted) -> list[str]:
    """The address from an earlier attempt, and the same address pasted twice."""
    earlier = _attempt("t-earlier")
    redirect = demo.driver.authorize(earlier.step.authorization_url)
    later = _attempt("t-later")
    from_earlier = _raised(lambda: later.complete_redirect(redirect), NoLoginInProgress)
    earlier.complete_redirect(redirect)
    twice = _raised(lambda: earlier.complete_redirect(redirect), NoLoginInProgress)
    return [from_earlier, twice]


def authorization_denied(demo, scripted) -> list[str]:
    attempt = _attempt("t-denied")
    denied = demo.driver.authorize(attempt.step.authorization_url, approve=False)
    return [_raised(lambda: attempt.complete_redirect(denied), AuthorizationDenied)]


def missing_scope(demo, scripted) -> list[str]:
    users_only = oa.login("demo", scope="read:users", name="t-users-only", browser=demo.driver.authorize)
    return [_raised(lambda: oa.read_json(f"{demo.url}/api/events", session=users_only, progress=False),
                    oa.InsufficientScope)]


def web_page_not_json(demo, scripted) -> list[str]:
    session = oa.login("demo", name="t-web-page", browser=demo.driver.authorize)
    return [_raised(lambda: oa.read_json(f"{demo.url}/", session=session, progress=False),
                    oa.UnexpectedContentType)]


def revocation_not_confirmed(demo, scripted) -> list[str]:
    scripted.script("/revoke", [Reply(503, "busy")])
    provider = oa.Provider(name="t-revoke", token_endpoint=f"{scripted.url}/token",
                           revocation_endpoint=f"{scripted.url}/revoke")
    token = oa.Token.from_response({"access_token": "t-revoke-access-1234", "expires_in": 3600})
    session = oa.Session(name="t-revoke", provider=provider, client=oa.ClientAuth("cid"), token=token)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert session.revoke() is False
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


TRIGGERS: dict[str, Callable[..., list[str]]] = {
    "not a redirect URL": not_a_redirect,
    "no matching login in progress": no_matching_login,
    "authorization denied": authorization_denied,
    "needs the scope 'read:events'; sign in again asking for it": missing_scope,
    "answered HTTP 200 with text/html, not JSON": web_page_not_json,
    "may remain valid until it expires": revocation_not_confirmed,
}


@pytest.fixture
def demo(demo_provider):
    registry._state().demo = demo_provider
    return demo_provider


def test_the_notebooks_quote_messages_and_every_quote_has_a_trigger():
    quotes = quoted_messages()
    assert len(quotes) >= 5, "the convention *\"...\"* finds the quickstart's quotes"
    missing = sorted({q for _, q in quotes if q not in TRIGGERS})
    assert not missing, f"quoted in a tutorial, with no trigger in {__name__}.TRIGGERS: {missing}"
    for notebook, quote in OTHER_QUOTES:
        text = _normal(" ".join(_markdown(NOTEBOOKS / notebook)))
        assert _normal(quote) in text, f"{notebook} no longer says {quote!r}: update OTHER_QUOTES"


@pytest.mark.parametrize(("notebook", "quote"), quoted_messages(), ids=lambda v: v[:40])
def test_quoted_message_is_what_the_code_says(demo, scripted, notebook, quote):
    trigger = TRIGGERS.get(quote)
    if trigger is None:
        pytest.fail(f"{notebook} quotes {quote!r}, which has no trigger here")
    texts = trigger(demo, scripted)
    assert texts, f"{trigger.__name__} produced no message"
    for text in texts:
        assert _normal(quote) in _normal(text), f"{notebook} promises {quote!r}; the code says: {text}"
