"""A token never leaves its origin: hosts decided as requests sends the URL (SECURITY_CASES 46, 47).

Part 1 is a table over the hostile URL forms: what urllib.parse reads, where requests
connects, and whether :func:`nb_oauth2.core.urls.checked_url` accepts it. Part 2 checks the
call sites (next links, the loopback-http rule, oauthlib's transport check, the pasted
redirect, certificate hosts). Part 3 runs real HTTP on 127.0.0.1: an "api" and an "evil"
server, nb_oauth2's signed-in Session (and a plain requests.Session carrying a token),
hostile forms in a body next link, a Link header, a redirect and a direct ``get``.

Only names that 0.1 had are imported at module level, so that parts 2 and 3 run (and
fail for their real reason) against 0.1; ``nb_oauth2.core.urls`` comes from a fixture.
"""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests
from requests.models import PreparedRequest
from urllib3.util import parse_url

import nb_oauth2 as oa
from nb_oauth2.core import errors
from nb_oauth2.frames import readers as frames
from nb_oauth2.frames import pagination
from nb_oauth2.core import providers
from nb_oauth2.core.errors import ConfigurationError, InsecureTransportError, PaginationError, UnsafeNextLink
from nb_oauth2.auth.session import Session
from tests.conftest import CANARY_CODE, CANARY_TOKEN
from tests.scripted_server import Reply, ScriptedServer


@pytest.fixture
def urls():
    import nb_oauth2.core.urls as module

    return module


def _unsafe():
    return errors.UnsafeURL  # added after 0.1


# -- part 1: what each parser reads ----------------------------------------------------------------------

ERR = "ValueError"  # urllib.parse raises
#: (url, host per urllib.parse, host requests connects to (None: requests refuses), checked_url accepts)
FORMS = [
    ("http://evil\\@api.example/x", "api.example", "evil", False),
    ("http://api.example\\@evil/x", "evil", "api.example", False),
    ("http://user:s3cretpw@api.example/x", "api.example", "api.example", False),
    ("http://@api.example/x", "api.example", "api.example", False),
    ("http://a@b@api.example/x", "api.example", "api.example", False),
    ("http://api.example:443@evil/x", "evil", "evil", False),
    ("http://api.example\t/x", "api.example", None, False),
    ("http://api.ex\tample/x", "api.example", None, False),
    ("\thttp://api.example/x", "api.example", "api.example", False),
    ("http://api.example/x\r\nHost: evil", "api.example", "api.example", False),
    ("http://api.example/x?page=2\n", "api.example", "api.example", False),
    ("http://%65vil/x", "%65vil", "evil", False),
    ("http://api%2eexample/x", "api%2eexample", "api.example", False),
    ("http://ｅｖｉｌ.com/x", "ｅｖｉｌ.com", None, False),
    ("http://ａｐｉ.example/x", "ａｐｉ.example", None, False),
    ("http://ＡＰＩ.example/x", "ａｐｉ.example", None, False),
    ("http://api\u2100.example/x", ERR, None, False),  # U+2100 ℀ -> 'a/c' under NFKC
    ("http://evil\uff03@api.example/x", ERR, "api.example", False),  # fullwidth "#": userinfo to requests
    ("http://api\u200b.example/x", "api\u200b.example", None, False),  # zero-width space
    ("https://straße.example/x", "straße.example", "xn--strae-oqa.example", False),  # IDNA 2003 says strasse
    ("http://ıapi.example/x", "ıapi.example", "xn--api-iua.example", True),  # dotless i: another, stable name
    ("HTTP://API.EXAMPLE/x", "api.example", "api.example", True),
    ("https://api.example./x", "api.example.", "api.example.", True),
    ("https://api.example:443/x", "api.example", "api.example", True),
    ("http://[::1]:8080/x", "::1", "::1", True),
    ("http://[::1%25eth0]/x", "::1%25eth0", "::1%eth0", False),
    ("http://127.0.0.1.evil.com/x", "127.0.0.1.evil.com", "127.0.0.1.evil.com", True),
    ("http://localhost.evil.com/x", "localhost.evil.com", "localhost.evil.com", True),
    ("http://127.1/x", "127.1", "127.1", True),
    ("http://0x7f.1/x", "0x7f.1", "0x7f.1", True),
    ("http://evil#@api.example/x", "evil", "evil", True),  # parsers agree: it goes to evil (an origin check's job)
    ("https://api.example/x?q=a\\b", "api.example", "api.example", True),  # a backslash in the query is data
    ("ftp://api.example/x", "api.example", "api.example", False),
]
IDS = [repr(f[0])[1:-1][:40] for f in FORMS]


def _split_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ERR


def _requests_host(url: str) -> str | None:
    prepared = PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except (requests.RequestException, ValueError):
        return None
    return (parse_url(prepared.url).host or "").strip("[]")


@pytest.mark.parametrize("url, split_host, sent_host, accepted", FORMS, ids=IDS)
def test_what_each_parser_reads(url, split_host, sent_host, accepted):
    """The differential itself: urllib.parse and requests/urllib3 do not always read the same host."""
    assert (_split_host(url), _requests_host(url)) == (split_host, sent_host)


@pytest.mark.parametrize("url, split_host, sent_host, accepted", FORMS, ids=IDS)
def test_checked_url_refuses_every_ambiguous_form(urls, url, split_host, sent_host, accepted):
    """Cases 46 and 47: accepted only when every parser reads one host and no userinfo is present."""
    if not accepted:
        with pytest.raises(_unsafe()) as err:
            urls.checked_url(url)
        assert "s3cretpw" not in str(err.value) and "\n" not in str(err.value)
        return
    checked = urls.checked_url(url)
    assert checked.host == sent_host.lower() and checked.url.startswith(checked.scheme + "://")
    assert checked.port == (urlsplit(url).port or {"http": 80, "https": 443}[checked.scheme])


def test_checked_url_gives_the_url_as_requests_sends_it(urls):
    checked = urls.checked_url("HTTPS://API.Example:0443/a b/{x}?q=a b")
    assert checked.origin == ("https", "api.example", 443)
    assert checked.url == "https://api.example:443/a%20b/%7Bx%7D?q=a%20b"
    assert "q=" not in repr(checked)  # a query may hold secrets
    assert urls.checked_url("http://[0:0:0:0:0:0:0:1]:8/").host == "::1"


@pytest.mark.parametrize("a, b, same", [
    ("https://API.example/x", "https://api.example:443/y", True),
    ("HTTPS://api.example/x", "https://api.example/y?z=1", True),
    ("http://[::1]:5/x", "http://[0:0:0:0:0:0:0:1]:5/y", True),
    ("https://api.example/x", "http://api.example/x", False),
    ("https://api.example/x", "https://api.example./x", False),
    ("https://api.example/x", "https://api.example:8443/x", False),
    ("http://127.0.0.1:5/", "http://127.1:5/", False),
    ("http://127.0.0.1:5/", "http://[::ffff:127.0.0.1]:5/", False),
    ("https://api.example/", "https://ıapi.example/", False),
])
def test_same_origin(urls, a, b, same):
    """Case 46: case and default ports do not make another origin; a trailing dot or look-alike does."""
    assert urls.same_origin(a, b) is same


def test_same_origin_refuses_rather_than_guesses(urls):
    """Case 46: an ambiguous URL is an error, not a False that a caller might read as 'not sent'."""
    with pytest.raises(_unsafe()):
        urls.same_origin("https://api.example/x", "https://evil\\@api.example/x")


LOOPBACK_HOSTS = ["127.0.0.1", "127.255.0.9", "::1", "[::1]", "0:0:0:0:0:0:0:1", "localhost", "LOCALHOST"]
NOT_LOOPBACK_HOSTS = ["127.1", "0x7f.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.000.000.001",
                      "127.0.0.1.evil.com", "localhost.evil.com", "localhost.", "127.0.0.1.", "::ffff:127.0.0.1",
                      "::ffff:7f00:1", "128.0.0.1", "10.0.0.1", "", "ｌｏｃａｌｈｏｓｔ", "１２７.0.0.1", "::1%eth0"]


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_loopback_is_literal_127_8_or_ipv6_one_or_localhost(urls, host):
    assert urls.is_loopback_host(host)


@pytest.mark.parametrize("host", NOT_LOOPBACK_HOSTS)
def test_loopback_look_alikes_are_not_loopback(urls, host):
    """Case 46: 127.1, 0x7f.1, 127.0.0.1.evil.com, localhost.evil.com, mapped IPv6 ... are not loopback."""
    assert not urls.is_loopback_host(host)


def test_a_listener_does_not_take_localhost_as_loopback(urls):
    assert not urls.is_loopback_host("localhost", allow_name=False)
    assert urls.is_loopback_host("127.0.0.1", allow_name=False)


@pytest.mark.parametrize("url, ok", [
    ("https://api.example/x", True), ("http://127.0.0.1:8/x", True), ("http://localhost/x", True),
    ("http://[::1]:8/x", True), ("HTTP://127.0.0.1/x", True),
    ("http://api.example/x", False), ("http://127.1/x", False), ("http://0x7f.1/x", False),
    ("http://127.0.0.1.evil.com/x", False), ("http://localhost.evil.com/x", False),
    ("http://evil\\@127.0.0.1/x", False), ("http://user@127.0.0.1/x", False),
    ("https://user:pw@api.example/x", False), ("https://evil\\@api.example/x", False),
    ("http://127.0.0.1\t/x", False), ("ftp://127.0.0.1/x", False), ("not a url", False),
])
def test_is_secure_or_loopback_never_raises(urls, url, ok):
    """Cases 46 and 47: https anywhere, http to loopback, as requests sends the URL; unsafe -> False."""
    assert urls.is_secure_or_loopback(url) is ok


def test_join_checks_the_raw_link_before_urljoin_drops_characters(urls):
    """Case 46: urljoin removes tab/CR/LF, so '/\\t/evil/x' would turn into '//evil/x'."""
    with pytest.raises(_unsafe()):
        urls.join("https://api.example/v1/x", "/\t/evil/x")
    assert urls.join("https://api.example/v1/x?page=1", " /v1/x?page=2 ") == "https://api.example/v1/x?page=2"


# -- part 2: the call sites ------------------------------------------------------------------------------

BASE = "http://127.0.0.1:8000/items?page=1"
HOSTILE_NEXT = {
    "backslash": "http://127.0.0.1:9999\\@127.0.0.1:8000/items?page=2",
    "userinfo": "http://user:s3cretpw@127.0.0.1:8000/items?page=2",
    "empty userinfo": "http://@127.0.0.1:8000/items?page=2",
    "double at": "http://a@127.0.0.1:8000@127.0.0.1:9999/items?page=2",
    "tab": "http://127.0.0.1:8000/it\tems?page=2",
    "tab relative": "/\t/127.0.0.1:9999/items?page=2",
    "crlf": "http://127.0.0.1:8000/items?page=2\r\nX-Injected: 1",
    "percent host": "http://%31%32%37.0.0.1:8000/items?page=2",
    "fullwidth": "http://１２７.０.０.１:8000/items?page=2",
    "nfkc delimiter": "http://127.0.0.1:9999\uff03@127.0.0.1:8000/items?page=2",
    "zero width": "http://127.0.0.1\u200b:8000/items?page=2",
    "trailing dot": "http://127.0.0.1.:8000/items?page=2",
    "127.1": "http://127.1:8000/items?page=2",
    "0x7f.1": "http://0x7f.1:8000/items?page=2",
    "ipv4-mapped": "http://[::ffff:127.0.0.1]:8000/items?page=2",
}


@pytest.mark.parametrize("name", HOSTILE_NEXT)
def test_check_next_url_refuses_every_ambiguous_or_foreign_link(name):
    """Cases 46 and 47: a next link is followed only to the host requests would reach for page 1."""
    with pytest.raises(UnsafeNextLink) as err:
        pagination.check_next_url(BASE, HOSTILE_NEXT[name])
    assert "s3cretpw" not in str(err.value)


@pytest.mark.parametrize("link", ["HTTP://127.0.0.1:8000/items?page=2", "/items?page=2", "?page=2",
                                  "http://127.0.0.1:8000/items?page=2&q=a\\b"])
def test_check_next_url_accepts_the_same_origin_in_any_spelling(link):
    assert urlsplit(pagination.check_next_url(BASE, link)).port == 8000
    assert pagination.check_next_url("https://api.example/x", "https://API.example:443/x?page=2")


def test_check_next_url_refuses_an_ambiguous_first_page():
    """Case 46: the base URL itself is read as requests sends it."""
    with pytest.raises(ConfigurationError):
        pagination.check_next_url("http://evil\\@127.0.0.1:8000/items", "/items?page=2")


@pytest.mark.parametrize("url", ["http://evil.example\\@127.0.0.1:5/x", "http://user:s3cretpw@127.0.0.1:5/x",
                                 "http://127.1:5/x", "http://localhost.evil.example/x", "http://127.0.0.1\t:5/x"])
def test_providers_is_loopback_url_decides_as_requests_sends(url):
    """Cases 46 and 47: the http-only-to-loopback rule reads the host requests connects to."""
    assert providers.is_loopback_url(url) is False


@pytest.mark.parametrize("url", ["https://user:s3cretpw@idp.example/token", "https://evil\\@idp.example/token",
                                 "http://evil.example\\@127.0.0.1:5/token", "https://idp.example/tok\ren"])
def test_require_secure_url_refuses_userinfo_and_differentials(url):
    """Cases 46 and 47: an endpoint URL with userinfo or a parser differential is a typed error."""
    with pytest.raises(ConfigurationError) as err:
        providers.require_secure_url(url, "token endpoint")
    assert type(err.value) is _unsafe() and "s3cretpw" not in str(err.value)


def test_oauthlib_transport_check_reads_the_host_requests_reads():
    """Case 46: oauthlib's is_secure_transport (patched by nb_oauth2) refuses differentials, even https."""
    from oauthlib.oauth2.rfc6749 import parameters

    from nb_oauth2.core.transport import loopback_http_allowed  # the check as nb_oauth2's own calls see it

    with loopback_http_allowed():
        assert parameters.is_secure_transport("http://127.0.0.1:5/x")
        assert parameters.is_secure_transport("https://idp.example/token")
        for hostile in ("http://evil.example\\@127.0.0.1:5/x", "https://evil.example\\@idp.example/token",
                        "http://user:s3cretpw@127.0.0.1:5/x", "http://127.1:5/x"):
            assert not parameters.is_secure_transport(hostile), hostile


@pytest.mark.parametrize("base", ["http://evil.example\\@127.0.0.1:8765/callback",
                                  "http://user:pw@127.0.0.1:8765/callback", "http://@127.0.0.1:8765/callback"])
def test_pasted_redirect_with_userinfo_or_differential_is_refused(base):
    """Cases 46 and 47: a pasted redirect URL is read as requests would read it."""
    from nb_oauth2.core.callback import Pending, check_callback

    pending = Pending(state="st-abcdefghijklmnop", redirect_uri="http://127.0.0.1:8765/callback",
                      code_verifier="v" * 50)
    with pytest.raises(errors.CallbackError):
        check_callback(f"{base}?code={CANARY_CODE}&state=st-abcdefghijklmnop", pending)


@pytest.mark.parametrize("host", ["127.1", "0x7f.1", "::ffff:127.0.0.1", "localhost"])
def test_loopback_catcher_listens_only_on_literal_loopback(host):
    from nb_oauth2.core.loopback import LoopbackCatcher

    with pytest.raises(ConfigurationError):
        LoopbackCatcher(host=host)


def _cert_lister(aliases=None, cert_hosts=()):
    fake = SimpleNamespace(provider=SimpleNamespace(mtls_endpoint_aliases=aliases or {}), cert_hosts=cert_hosts)
    return lambda url: Session._listed_for_cert(fake, url)


def test_certificate_hosts_are_matched_as_requests_sends():
    """Case 46: the client certificate goes only to the host requests connects to."""
    listed = _cert_lister(cert_hosts=("mtls.example", "pinned.example:8443"))
    assert listed("https://mtls.example/x") and listed("https://MTLS.example:9/x")
    assert listed("https://pinned.example:8443/x") and not listed("https://pinned.example/x")
    assert not listed("https://mtls.example.evil.example/x") and not listed("https://mtls.example./x")
    with pytest.raises(ConfigurationError):
        listed("https://evil.example\\@mtls.example/x")


def test_an_ambiguous_mtls_alias_lists_no_host():
    """Case 46: an alias that requests would send to 'evil.example' does not list 'mtls.example'."""
    listed = _cert_lister(aliases={"token_endpoint": "https://evil.example\\@mtls.example/token"})
    assert not listed("https://mtls.example/token")
    assert _cert_lister(aliases={"token_endpoint": "https://mtls.example:443/token"})("https://mtls.example/x")


# -- part 3: real HTTP on 127.0.0.1: the token never reaches "evil" --------------------------------------


@pytest.fixture
def evil():
    server = ScriptedServer()
    server.script("/items", [Reply(200, {"data": [{"stolen": True}]})])
    yield server
    server.close()


@pytest.fixture
def api(scripted):
    scripted.script("/items", [Reply(200, {"data": [{"i": 1}]})])
    return scripted


@pytest.fixture
def signed_in(demo_provider):
    """nb_oauth2's own auto-refreshing Session, signed in at the demo provider (code grant)."""
    p = demo_provider
    return oa.login("origins", issuer=p.issuer, client_id=p.clients["public"].client_id, browser=p.driver.authorize)


@pytest.fixture
def plain():
    """A plain requests.Session carrying a bearer token in its default headers."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {CANARY_TOKEN}"
    yield session
    session.close()


def _hostport(server) -> tuple[str, str]:
    return server.url.split("//", 1)[1], server.url.rsplit(":", 1)[1]


#: hostile URLs built from the api's and the evil server's host:port; the ones in USERINFO are case 47
FORMS_E2E = {
    "backslash": "http://{E}\\@{A}/items?page=2",
    "double backslash": "http://{E}\\\\@{A}/items?page=2",
    "tab": "http://{A}/it\tems?page=2",
    "tab in host": "http://127.0.0.1\t:{EP}/items?page=2",
    "crlf": "http://{A}/items?page=2\r\nX-Injected: 1",
    "percent host": "http://%31%32%37.0.0.1:{EP}/items?page=2",
    "percent dot": "http://127%2e0.0.1:{EP}/items?page=2",
    "fullwidth": "http://１２７.０.０.１:{EP}/items?page=2",
    "nfkc delimiter": "http://{E}\uff03@{A}/items?page=2",
    "zero width": "http://127.0.0.1\u200b:{EP}/items?page=2",
    "trailing dot": "http://127.0.0.1.:{EP}/items?page=2",
    "127.1": "http://127.1:{EP}/items?page=2",
    "0x7f.1": "http://0x7f.1:{EP}/items?page=2",
    "127.0.0.1.evil": "http://127.0.0.1.evil.invalid:{EP}/items?page=2",
    "localhost.evil": "http://localhost.evil.invalid:{EP}/items?page=2",
}
USERINFO = {
    "user:s3cretpw@api": "http://user:s3cretpw@{A}/items?page=2",
    "@api": "http://@{A}/items?page=2",
    "api@evil": "http://{A}@{E}/items?page=2",
    "a@api@evil": "http://a@{A}@{E}/items?page=2",
}
#: forms that parse cleanly but name a host that is not loopback: plain http there is refused
LOOK_ALIKES = {"trailing dot", "127.1", "0x7f.1", "127.0.0.1.evil", "localhost.evil"}
LATIN1 = {k for k, v in {**FORMS_E2E, **USERINFO}.items() if v.isascii() and "\r" not in v}
#: forms every parser can read (only the host differs, or userinfo is present): refused as UnsafeURL
WELL_FORMED = {"backslash", "double backslash", "percent host", "percent dot", *USERINFO}
NEXT_FORMS = FORMS_E2E
#: forms requests cannot build a request from at all (refused as malformed before any origin question)
MALFORMED = {"tab in host", "fullwidth", "nfkc delimiter", "zero width"}


def _form(template: str, api, evil) -> str:
    (a, _), (e, ep) = _hostport(api), _hostport(evil)
    return template.format(A=a, E=e, EP=ep)


def _assert_token_stayed(api, evil, *, api_requests: int = 1) -> None:
    assert [s for s in evil.seen if "Authorization" in s.headers] == []
    assert evil.seen == []
    assert api.count("/items") == api_requests


def _raised(call) -> BaseException | None:
    """What ``call()`` raised (None if nothing): the servers are checked first, then the error."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - asserted on by the caller
        return exc
    return None


def _expect_refused_link(raised: BaseException | None, template: str) -> None:
    """UnsafeNextLink; a link requests cannot even build is a (case 58) PaginationError."""
    malformed = template in (FORMS_E2E[name] for name in MALFORMED)
    assert isinstance(raised, PaginationError if malformed else UnsafeNextLink), raised


def _read_next_from_body(api, evil, session, template) -> None:
    api.script("/items", [Reply(200, {"data": [{"i": 1}], "next": _form(template, api, evil)}),
                          Reply(200, {"data": [{"i": 2}]})])
    raised = _raised(lambda: frames.read_json(api.url + "/items", session=session, progress=False))
    _assert_token_stayed(api, evil)
    _expect_refused_link(raised, template)


def _read_next_from_link(api, evil, session, template) -> None:
    link = _form(template, api, evil)
    api.script("/items", [Reply(200, {"data": [{"i": 1}]}, {"Link": f'<{link}>; rel="next"'}),
                          Reply(200, {"data": [{"i": 2}]})])
    raised = _raised(lambda: frames.read_json(api.url + "/items", session=session, progress=False))
    _assert_token_stayed(api, evil)
    _expect_refused_link(raised, template)


def _get_directly(api, evil, session, template, expected) -> None:
    raised = _raised(lambda: session.get(_form(template, api, evil)))
    _assert_token_stayed(api, evil, api_requests=0)
    assert type(raised) is expected(), raised
    assert CANARY_TOKEN not in str(raised) and "s3cretpw" not in str(raised)


@pytest.mark.parametrize("name", NEXT_FORMS)
def test_case_46_next_link_in_body_through_nb_oauth2_session(api, evil, signed_in, name):
    """Case 46: a hostile next link in the body: a typed error, and 'evil' never sees a request."""
    _read_next_from_body(api, evil, signed_in, NEXT_FORMS[name])


@pytest.mark.parametrize("name", USERINFO)
def test_case_47_userinfo_next_link_in_body_through_nb_oauth2_session(api, evil, signed_in, name):
    """Case 47: a next link with userinfo is refused; no second request anywhere."""
    _read_next_from_body(api, evil, signed_in, USERINFO[name])


@pytest.mark.parametrize("name", sorted(LATIN1 & set(NEXT_FORMS)))
def test_case_46_next_link_in_link_header_through_nb_oauth2_session(api, evil, signed_in, name):
    """Case 46: the same forms in a Link header (the ones a header can carry)."""
    _read_next_from_link(api, evil, signed_in, NEXT_FORMS[name])


@pytest.mark.parametrize("name", USERINFO)
def test_case_47_userinfo_in_link_header_through_nb_oauth2_session(api, evil, signed_in, name):
    """Case 47: userinfo in a Link header next link is refused."""
    _read_next_from_link(api, evil, signed_in, USERINFO[name])


@pytest.mark.parametrize("name", FORMS_E2E)
def test_case_46_direct_get_through_nb_oauth2_session(api, evil, signed_in, name):
    """Case 46: session.get(hostile) raises UnsafeURL (or InsecureTransportError for a look-alike
    of loopback over http) before the token is sent anywhere."""
    expected = (lambda: InsecureTransportError) if name in LOOK_ALIKES else _unsafe
    _get_directly(api, evil, signed_in, FORMS_E2E[name], expected)


@pytest.mark.parametrize("name", USERINFO)
def test_case_47_direct_get_with_userinfo_through_nb_oauth2_session(api, evil, signed_in, name):
    """Case 47: session.get('http://user:s3cretpw@host/...') is refused with UnsafeURL, even to the api."""
    _get_directly(api, evil, signed_in, USERINFO[name], _unsafe)


@pytest.mark.parametrize("name", sorted({"backslash", "double backslash", "percent host", "fullwidth", "tab in host"}))
def test_case_46_next_links_through_a_plain_requests_session(api, evil, plain, name):
    """Case 46: read_json with a plain requests.Session carrying a token: body and Link next links."""
    _read_next_from_body(api, evil, plain, FORMS_E2E[name])
    api.seen.clear()
    if name in LATIN1:
        _read_next_from_link(api, evil, plain, FORMS_E2E[name])


@pytest.mark.parametrize("name", USERINFO)
def test_case_47_userinfo_next_links_through_a_plain_requests_session(api, evil, plain, name):
    """Case 47: read_json with a plain session refuses userinfo next links (body and Link header)."""
    _read_next_from_body(api, evil, plain, USERINFO[name])
    api.seen.clear()
    _read_next_from_link(api, evil, plain, USERINFO[name])


@pytest.mark.parametrize("name", sorted(set(FORMS_E2E) - LOOK_ALIKES) + sorted(USERINFO))
def test_cases_46_and_47_first_page_url_through_a_plain_requests_session(api, evil, plain, name):
    """Cases 46 and 47: read_json(hostile URL) with a plain session: refused before page 1 is requested."""
    template = {**FORMS_E2E, **USERINFO}[name]
    raised = _raised(lambda: frames.read_json(_form(template, api, evil), session=plain, progress=False))
    _assert_token_stayed(api, evil, api_requests=0)
    assert isinstance(raised, ConfigurationError), raised  # malformed ones are refused earlier, as case 58
    if name in WELL_FORMED:
        assert type(raised) is _unsafe()


def test_the_token_still_reaches_the_api_in_any_spelling_of_its_origin(api, evil, signed_in):
    """Control: same origin spelled in capitals, via a Link header, is followed with the token."""
    a, _ = _hostport(api)
    link = f"HTTP://{a.upper()}/items?page=2"
    api.script("/items", [Reply(200, {"data": [{"i": 1}]}, {"Link": f'<{link}>; rel="next"'}),
                          Reply(200, {"data": [{"i": 2}]})])
    frame = frames.read_json(api.url + "/items", session=signed_in, progress=False)
    assert frame["i"].tolist() == [1, 2]
    assert [s.headers.get("Authorization", "")[:7] for s in api.seen] == ["Bearer ", "Bearer "]
    assert evil.seen == []


@pytest.mark.parametrize("location", ["http://{E}\\@{A}/items", "http://{A}@{E}/items",
                                      "http://%31%32%37.0.0.1:{EP}/items", "http://{E}/items"])
def test_case_46_redirects_never_carry_the_token_to_another_host(api, evil, signed_in, location):
    """Case 46: a 302 to a hostile Location: whatever requests follows, 'evil' gets no Authorization."""
    api.script("/r", [Reply(302, b"", {"Location": _form(location, api, evil)})])
    signed_in.get(api.url + "/r")
    assert [s for s in evil.seen if "Authorization" in s.headers] == []


@pytest.mark.parametrize("name", ["backslash", "double backslash", "percent host"])
def test_case_46_stock_mode_and_withheld_token_paths_check_too(api, evil, signed_in, name):
    """Case 46: with auto_refresh=False (requests-oauthlib's own code path) and with
    withhold_token=True the URL is checked the same way; 'evil' sees nothing."""
    stock = Session(name="stock", provider=signed_in.provider, client=signed_in.client_auth, auto_refresh=False)
    stock.token = dict(signed_in.token_info.to_oauthlib())
    url = _form(FORMS_E2E[name], api, evil)
    for call in (lambda: stock.get(url), lambda: signed_in.get(url, withhold_token=True)):
        raised = _raised(call)
        _assert_token_stayed(api, evil, api_requests=0)
        assert type(raised) is _unsafe(), raised
