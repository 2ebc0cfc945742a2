"""The auth object that renews and attaches the token, driven by feeding it requests and responses.

Most tests call :class:`BearerAuth` on prepared requests and hand its response hook
``requests.Response`` objects built here, with ``refresh``/``refetch`` callables that count
what they are asked: the decisions are checked without HTTP. The last ones run the same
object over a scripted loopback server, through nb_oauth2's Session and through a Fetcher.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from nb_oauth2.core.endpoint import ClientAuth, Endpoints
from nb_oauth2.core.errors import InsecureTransportError, InvalidGrant, ReauthRequired
from nb_oauth2.core.providers import Provider
from nb_oauth2.core.token import Token
from nb_oauth2.frames.fetch import Fetcher
from nb_oauth2.auth.bearer_auth import BearerAuth
from nb_oauth2.auth.session import Session
from nb_oauth2.auth.store import MemoryStore
from tests.conftest import CANARY_REFRESH, CANARY_TOKEN
from tests.scripted_server import Reply

URL = "https://api.example.org/items"
INVALID = {"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'}


def token(access: str = CANARY_TOKEN, *, lifetime: float | None = 3600, left: float | None = None,
          refresh: str | None = CANARY_REFRESH) -> Token:
    """A token of ``lifetime`` seconds with ``left`` seconds to go (default: just issued)."""
    now = time.time()
    left = lifetime if left is None else left
    return Token(access_token=access, refresh_token=refresh, received_at=now - ((lifetime or 0) - (left or 0)),
                 expires_at=None if lifetime is None else now + left)


class Renewals:
    """``refresh``/``refetch`` for the auth object: count the calls, hand out new tokens."""

    def __init__(self, *, refetch: bool = False, fail: Exception | None = None, pause: float = 0.0):
        self.refreshed: list[Token] = []
        self.refetched = 0
        self._refetch, self._fail, self._pause = refetch, fail, pause

    def refresh(self, current: Token) -> Token:
        self.refreshed.append(current)
        time.sleep(self._pause)
        if self._fail is not None:
            raise self._fail
        n = len(self.refreshed)
        return token(f"renewed-{n}-access", refresh=f"renewed-{n}-refresh")

    def refetch(self) -> Token | None:
        self.refetched += 1
        return token(f"refetched-{self.refetched}", refresh=None) if self._refetch else None

    def auth(self, first: Token | None, **options) -> BearerAuth:
        auth = BearerAuth(name="t", refresh=self.refresh, refetch=self.refetch, **options)
        if first is not None:
            auth.set_token(first)
        return auth


def prepared(url: str = URL, method: str = "GET", **options) -> requests.PreparedRequest:
    return requests.Request(method, url, **options).prepare()


def sent_with(auth: BearerAuth, request: requests.PreparedRequest | None = None) -> str:
    return auth(request or prepared()).headers["Authorization"]


class Adapter:
    """Stands in for the connection a response came from: records re-sends, answers from a list."""

    def __init__(self, *answers: tuple[int, dict]):
        self.answers = list(answers)
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        self.sent.append(request)
        status, headers = self.answers.pop(0)
        return response(request, status, headers, self)


def response(request: requests.PreparedRequest, status: int, headers: dict | None = None,
             connection: Adapter | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code, answer.request, answer.url = status, request, request.url
    answer.headers.update(headers or {})
    answer.connection = connection
    answer._content, answer._content_consumed = b"", True
    return answer


def answered(request: requests.PreparedRequest, status: int, headers: dict | None = None,
             connection: Adapter | None = None) -> requests.Response:
    """What requests does after sending: run the request's response hooks on the answer."""
    answer = response(request, status, headers, connection)
    for hook in request.hooks["response"]:
        answer = hook(answer, timeout=5) or answer
    return answer


# -- what is attached ---------------------------------------------------------------------------


def test_a_fresh_token_is_attached_as_bearer_and_nothing_is_renewed():
    renewals = Renewals()
    auth = renewals.auth(token())
    assert sent_with(auth) == f"Bearer {CANARY_TOKEN}"
    assert renewals.refreshed == [] and renewals.refetched == 0


def test_nothing_is_sent_without_a_token():
    """Before login and after forget(): ReauthRequired from the auth object, no header, no renewal."""
    renewals = Renewals()
    auth = renewals.auth(None)
    request = prepared()
    with pytest.raises(ReauthRequired, match="not signed in"):
        auth(request)
    assert "Authorization" not in request.headers
    auth.set_token(token())
    auth.forget()
    with pytest.raises(ReauthRequired, match="signed out"):
        auth(prepared())
    assert renewals.refreshed == []


def test_the_token_never_goes_over_plain_http_to_another_host():
    auth = Renewals().auth(token())
    request = prepared("http://api.example.org/items")
    with pytest.raises(InsecureTransportError):
        auth(request)
    assert "Authorization" not in request.headers
    assert sent_with(auth, prepared("http://127.0.0.1:8080/items")) == f"Bearer {CANARY_TOKEN}"


# -- when it renews (case 48) ---------------------------------------------------------------------


@pytest.mark.parametrize("lifetime,left,renews", [
    (3600, 46, False), (3600, 44, True),   # leeway 45 s
    (5, 2.6, False), (5, 2.4, True),        # half of a 5 s lifetime
    (None, None, False),                    # unknown expiry: only after a 401
])
def test_renewal_happens_within_min_of_leeway_and_half_the_lifetime(lifetime, left, renews):
    """Case 48: renewed exactly when the token enters min(leeway, lifetime / 2) of its expiry."""
    renewals = Renewals()
    auth = renewals.auth(token(lifetime=lifetime, left=left))
    header = sent_with(auth)
    assert len(renewals.refreshed) == (1 if renews else 0)
    assert header == ("Bearer renewed-1-access" if renews else f"Bearer {CANARY_TOKEN}")


def test_a_token_nothing_can_renew_is_used_while_valid_then_reauth():
    """Case 48: no refresh token and no re-fetch: used (asked once) until it expires; then ReauthRequired."""
    renewals = Renewals()
    nearly_over = token(lifetime=3600, left=5, refresh=None)
    auth = renewals.auth(nearly_over)
    for _ in range(3):
        assert sent_with(auth) == f"Bearer {CANARY_TOKEN}"
    assert renewals.refetched == 1 and renewals.refreshed == []
    auth.set_token(nearly_over.with_changes(expires_at=time.time() - 1))
    request = prepared()
    with pytest.raises(ReauthRequired, match="cannot be refreshed"):
        auth(request)
    assert "Authorization" not in request.headers


def test_a_client_credentials_token_is_fetched_again():
    renewals = Renewals(refetch=True)
    auth = renewals.auth(token(left=10, refresh=None))
    assert sent_with(auth) == "Bearer refetched-1"
    assert auth.token_requests == 1


# -- single flight, store, rotation, invalid_grant ------------------------------------------------


def test_32_threads_across_an_expiry_make_exactly_one_token_request():
    """Cases 19 and 49: 32 threads cross the expiry at once -> 1 refresh, every request carries the new token."""
    renewals = Renewals(pause=0.05)
    auth = renewals.auth(token(lifetime=5, left=-0.1))
    barrier = threading.Barrier(32)
    headers: list[str] = []

    def worker():
        barrier.wait()
        headers.append(sent_with(auth))

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(renewals.refreshed) == 1
    assert headers == ["Bearer renewed-1-access"] * 32


def test_a_fresher_token_in_a_shared_store_is_adopted_without_a_token_request():
    """Case 20: under the store's lock the store is read first; another process's new token is used."""
    store = MemoryStore()
    renewals = Renewals()
    auth = renewals.auth(token(left=10), store=store, store_key="shared")
    store.save("shared", token("from-another-kernel").to_dict())
    assert sent_with(auth) == "Bearer from-another-kernel"
    assert renewals.refreshed == []


def test_a_rotated_refresh_token_is_committed_before_anyone_hears_of_it():
    """Case 18: memory, then the store, then listeners; the next renewal uses the rotated refresh token."""
    store = MemoryStore()
    renewals = Renewals()
    auth = renewals.auth(token(left=10), store=store, store_key="k")
    seen = []
    auth.on_token(lambda new: seen.append((auth.token is new, store.load("k")["refresh_token"])))
    assert sent_with(auth) == "Bearer renewed-1-access"
    assert seen == [(True, "renewed-1-refresh")]
    auth.renew(auth.token, force=True)
    assert [t.refresh_token for t in renewals.refreshed] == [CANARY_REFRESH, "renewed-1-refresh"]


def test_invalid_grant_is_reauth_required_and_the_refresh_token_is_purged():
    """Case 17: invalid_grant -> ReauthRequired; the refresh token is gone from memory and store; never retried."""
    store = MemoryStore()
    renewals = Renewals(fail=InvalidGrant("dead", error="invalid_grant"))
    auth = renewals.auth(token(left=10), store=store, store_key="k")
    with pytest.raises(ReauthRequired, match="Sign in again"):
        auth(prepared())
    assert auth.token.refresh_token is None and store.load("k")["refresh_token"] is None
    with pytest.raises(ReauthRequired):
        auth(prepared())
    assert len(renewals.refreshed) == 1


# -- the 401 retry (case 28) --------------------------------------------------------------------------


def test_401_invalid_token_renews_once_and_resends_once():
    """Case 28: the 401 answer is closed, the token renewed, the same request sent again with it."""
    renewals = Renewals()
    auth = renewals.auth(token())
    request = auth(prepared(method="POST", data={"q": "1"}))
    adapter = Adapter((200, {}))
    final = answered(request, 401, INVALID, adapter)
    assert final.status_code == 200 and [r.status_code for r in final.history] == [401]
    assert len(renewals.refreshed) == 1 and len(adapter.sent) == 1
    again = adapter.sent[0]
    assert again.headers["Authorization"] == "Bearer renewed-1-access"
    assert (again.method, again.url, again.body) == ("POST", URL, "q=1")


def test_a_second_401_is_returned_not_looped():
    """Case 28: after one renewal and one re-send, a 401 is the answer."""
    renewals = Renewals()
    auth = renewals.auth(token())
    adapter = Adapter((401, INVALID))
    final = answered(auth(prepared()), 401, INVALID, adapter)
    assert final.status_code == 401 and len(adapter.sent) == 1 and len(renewals.refreshed) == 1


@pytest.mark.parametrize("status,headers", [
    (401, {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}),
    (403, INVALID),
    (200, {}),
])
def test_other_answers_are_not_retried(status, headers):
    renewals = Renewals()
    auth = renewals.auth(token())
    adapter = Adapter()
    assert answered(auth(prepared()), status, headers, adapter).status_code == status
    assert adapter.sent == [] and renewals.refreshed == []


def test_a_401_without_an_error_code_is_retried():
    """RFC 6750 3.1: a 401 with no error code (no token, or one the server does not know) counts."""
    renewals = Renewals()
    adapter = Adapter((200, {}))
    assert answered(renewals.auth(token())(prepared()), 401, {}, adapter).status_code == 200


def test_a_401_to_a_request_that_lost_the_token_is_not_retried():
    """A redirect to another host drops Authorization: its 401 is not answered with a token."""
    renewals = Renewals()
    auth = renewals.auth(token())
    request = auth(prepared())
    del request.headers["Authorization"]
    adapter = Adapter()
    assert answered(request, 401, INVALID, adapter).status_code == 401
    assert adapter.sent == [] and renewals.refreshed == []


def test_a_streamed_body_is_not_sent_twice():
    renewals = Renewals()
    auth = renewals.auth(token())
    request = auth(prepared(method="POST", data=iter([b"a", b"b"])))
    adapter = Adapter()
    assert answered(request, 401, INVALID, adapter).status_code == 401 and adapter.sent == []


def test_a_401_after_another_thread_renewed_uses_that_token():
    """Single flight on the 401 path too: the token seen is stale, the current one is used, no request."""
    renewals = Renewals()
    first = token()
    auth = renewals.auth(first)
    request = auth(prepared())
    auth.set_token(token("renewed-elsewhere"))
    adapter = Adapter((200, {}))
    assert answered(request, 401, INVALID, adapter).status_code == 200
    assert adapter.sent[0].headers["Authorization"] == "Bearer renewed-elsewhere" and renewals.refreshed == []


# -- over the wire: Session and Fetcher share the path ------------------------------------------------


def scripted_session(scripted, first: Token) -> Session:
    provider = Provider(name="s", token_endpoint=scripted.url + "/token")
    client = ClientAuth("cid")
    return Session(name="wire", provider=provider, client=client, token=first,
                   endpoints=Endpoints(provider, client, timeout=(2, 5)))


def test_session_and_fetcher_send_through_the_auth_object(scripted):
    """Case 28 over HTTP: Session.get and a Fetcher over that Session renew once on a 401 and re-send."""
    scripted.script("/token", [Reply(200, {"access_token": "wire-new-123456", "token_type": "Bearer",
                                           "expires_in": 3600})])
    scripted.script("/api", [Reply(401, {"error": "invalid_token"}, INVALID), Reply(200, {"ok": True})])
    session = scripted_session(scripted, token())
    assert isinstance(session.auth, BearerAuth)
    assert session.get(scripted.url + "/api").json() == {"ok": True}
    assert Fetcher(session, retries=0).get(scripted.url + "/api").data == {"ok": True}
    auths = [s.auth for s in scripted.seen if s.route == "/api"]
    assert auths == [f"Bearer {CANARY_TOKEN}", "Bearer wire-new-123456", "Bearer wire-new-123456"]
    assert scripted.count("/token") == 1


def test_a_plain_requests_session_with_the_auth_object_renews_the_same_way(scripted):
    """Fetcher knows no session type: any requests.Session with this auth gets renewal and the retry."""
    scripted.script("/api", [Reply(401, {"error": "invalid_token"}, INVALID), Reply(200, {"n": 2})])
    renewals = Renewals()
    http = requests.Session()
    http.auth = renewals.auth(token())
    assert Fetcher(http, retries=0).get(scripted.url + "/api").data == {"n": 2}
    assert [s.auth for s in scripted.seen] == [f"Bearer {CANARY_TOKEN}", "Bearer renewed-1-access"]


def test_a_session_that_is_not_signed_in_sends_nothing(scripted):
    session = scripted_session(scripted, token())
    session.forget()
    with pytest.raises(ReauthRequired):
        session.get(scripted.url + "/api")
    with pytest.raises(ReauthRequired):
        Fetcher(session, retries=0).get(scripted.url + "/api")
    assert scripted.seen == []
