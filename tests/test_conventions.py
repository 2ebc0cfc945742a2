"""The pagination conventions of the APIs people use from notebooks (issue 13 item 2).

Each fixture serves bodies and headers shaped as that API's public documentation shows them (its
envelope, field names and query parameters), 7 records over pages of 3 (a partial last page), on the
scripted loopback server. ``read_json`` with no ``paginate=`` must return every record once, in order,
and request the next page the way the API expects it (the server answers a wrong request with 400).
"""

from __future__ import annotations

import json
import threading
from typing import Callable
from urllib.parse import quote

import pytest
import requests

import nb_oauth2 as oa
from nb_oauth2.core.errors import ConfigurationError, PaginationError, UnsafeNextLink
from nb_oauth2.frames.api_paginators import StartingAfterPaginator
from nb_oauth2.frames.readers import iter_records, read_json
from tests.scripted_server import Reply, ScriptedServer, Seen

RECORDS, SIZE = 7, 3
IDS = list(range(1, RECORDS + 1))


def _slice(start: int) -> list[int]:
    """The ids of the page starting at record index ``start``."""
    return IDS[start:start + SIZE]


def _list(records: list, headers: dict | None = None) -> Reply:
    """A top-level JSON array (Reply sends only dicts as JSON)."""
    return Reply(200, json.dumps(records), {"Content-Type": "application/json", **(headers or {})})


def _bad(why: str) -> Reply:
    return Reply(400, {"error": {"message": why}})


def _index(seen: Seen, param: str, token: Callable[[str], int] = int, default: int = 0) -> int:
    value = seen.query.get(param)
    return default if value is None else token(value)


def _token(i: int) -> str:
    return f"dGVhbTpD{i:04d}QjI="  # an opaque, base64-looking cursor


def _untoken(value: str) -> int:
    return int(value[8:12])


# -- the fixtures: (start path, reply(seen, base url)) -------------------------------------------------


def stripe(seen: Seen, base: str) -> Reply:
    """Stripe: ``has_more`` and ``data``; the next page is ``starting_after=<id of the last object>``."""
    after = seen.query.get("starting_after")
    start = 0 if after is None else int(after.removeprefix("cus_")) if after.startswith("cus_") else -1
    if start < 0 or seen.query.get("limit") != str(SIZE):
        return _bad("starting_after must be an object id")
    ids = _slice(start)
    return Reply(200, {"object": "list", "url": "/v1/customers", "has_more": start + SIZE < RECORDS,
                       "data": [{"id": f"cus_{i:03d}", "object": "customer", "email": f"c{i}@example.com",
                                 "created": 1700000000 + i, "livemode": False} for i in ids]})


def stripe_search(seen: Seen, base: str) -> Reply:
    """Stripe search (``/v1/customers/search``): ``object: search_result``, ``next_page`` back as ``page=``,
    null on the last page."""
    if "query" not in seen.query or "starting_after" in seen.query:
        return _bad("search takes query= and page=")
    start = _index(seen, "page", _untoken)
    more = start + SIZE < RECORDS
    return Reply(200, {"object": "search_result", "url": "/v1/customers/search", "has_more": more,
                       "next_page": _token(start + SIZE) if more else None, "total_count": RECORDS,
                       "data": [{"id": f"cus_{i:03d}", "object": "customer", "email": f"c{i}@example.com"}
                                for i in _slice(start)]})


def slack(seen: Seen, base: str) -> Reply:
    """Slack: ``response_metadata.next_cursor`` back as ``cursor=``; an empty string on the last page."""
    start = _index(seen, "cursor", _untoken)
    ids = _slice(start)
    nxt = _token(start + SIZE) if start + SIZE < RECORDS else ""
    return Reply(200, {"ok": True, "channels": [{"id": f"C{i:08d}", "name": f"chan-{i}", "is_channel": True,
                                                 "created": 1449252889, "num_members": i} for i in ids],
                       "response_metadata": {"next_cursor": nxt}})


def google(seen: Seen, base: str) -> Reply:
    """Google APIs (Drive files.list): ``nextPageToken`` back as ``pageToken=``, absent on the last page."""
    start = _index(seen, "pageToken", _untoken)
    body = {"kind": "drive#fileList", "incompleteSearch": False,
            "files": [{"kind": "drive#file", "id": f"1a{i}", "name": f"file {i}.csv", "mimeType": "text/csv"}
                      for i in _slice(start)]}
    if start + SIZE < RECORDS:
        body["nextPageToken"] = _token(start + SIZE)
    return Reply(200, body)


def graph(seen: Seen, base: str) -> Reply:
    """Microsoft Graph: records in ``value``, ``@odata.nextLink`` with ``$skiptoken``."""
    start = _index(seen, "$skiptoken", _untoken)
    body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
            "value": [{"id": f"87d349ed-44d7-43e1-9a83-5f2406dee5{i:02d}", "displayName": f"User {i}",
                       "userPrincipalName": f"user{i}@contoso.com"} for i in _slice(start)]}
    if start + SIZE < RECORDS:
        body["@odata.nextLink"] = f"{base}/v1.0/users?$top={SIZE}&$skiptoken={_token(start + SIZE)}"
    return Reply(200, body)


def hubspot(seen: Seen, base: str) -> Reply:
    """HubSpot CRM v3: ``paging.next.after`` back as ``after=`` (and ``paging.next.link``)."""
    start = _index(seen, "after")
    body: dict = {"results": [{"id": str(i), "properties": {"email": f"c{i}@example.com", "hs_object_id": str(i)},
                               "createdAt": "2024-01-01T00:00:00.000Z", "archived": False} for i in _slice(start)]}
    if start + SIZE < RECORDS:
        body["paging"] = {"next": {"after": str(start + SIZE),
                                   "link": f"{base}/crm/v3/objects/contacts?after={start + SIZE}"}}
    return Reply(200, body)


def x_api(seen: Seen, base: str) -> Reply:
    """X API v2 (a user's posts): ``meta.next_token`` back as ``pagination_token=``."""
    if "next_token" in seen.query:
        return _bad("this endpoint takes pagination_token")
    start = _index(seen, "pagination_token", _untoken)
    ids = _slice(start)
    meta = {"result_count": len(ids), "newest_id": str(ids[0]), "oldest_id": str(ids[-1])}
    if start + SIZE < RECORDS:
        meta["next_token"] = _token(start + SIZE)
    return Reply(200, {"data": [{"id": str(i), "text": f"post {i}", "edit_history_tweet_ids": [str(i)]}
                                for i in ids], "meta": meta})


def x_search(seen: Seen, base: str) -> Reply:
    """X API v2 recent search: the same ``meta.next_token``, sent back as ``next_token=``."""
    if "pagination_token" in seen.query:
        return _bad("search takes next_token")
    start = _index(seen, "next_token", _untoken)
    ids = _slice(start)
    meta = {"newest_id": str(ids[0]), "oldest_id": str(ids[-1]), "result_count": len(ids)}
    if start + SIZE < RECORDS:
        meta["next_token"] = _token(start + SIZE)
    return Reply(200, {"data": [{"id": str(i), "text": f"post {i}"} for i in ids], "meta": meta})


def airtable(seen: Seen, base: str) -> Reply:
    """Airtable: an ``offset`` token in the body, sent back as ``offset=``."""
    value = seen.query.get("offset")
    start = 0 if value is None else int(value.split("/rec")[1])
    body: dict = {"records": [{"id": f"rec{i:014d}", "createdTime": "2024-01-01T00:00:00.000Z",
                               "fields": {"Name": f"row {i}", "Count": i}} for i in _slice(start)]}
    if start + SIZE < RECORDS:
        body["offset"] = f"itrAbc123/rec{start + SIZE:014d}"
    return Reply(200, body)


def salesforce(seen: Seen, base: str) -> Reply:
    """Salesforce SOQL query: relative ``nextRecordsUrl``, ``done: true`` on the last page."""
    start = int(seen.route.rsplit("-", 1)[1]) if "-" in seen.route else 0
    done = start + SIZE >= RECORDS
    body = {"totalSize": RECORDS, "done": done,
            "records": [{"attributes": {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/001{i}"},
                         "Id": f"001{i}", "Name": f"Account {i}"} for i in _slice(start)]}
    if not done:
        body["nextRecordsUrl"] = f"/services/data/v59.0/query/01gD0000002HU6KIAW-{start + SIZE}"
    return Reply(200, body)


def jira(seen: Seen, base: str) -> Reply:
    """Jira Cloud search: ``startAt``/``maxResults``/``total`` in the body and the query; a ``maxResults``
    above what the server allows is capped (the body tells the size it served)."""
    start = _index(seen, "startAt")
    if "maxResults" not in seen.query:
        return _bad("maxResults missing")
    size = min(int(seen.query["maxResults"]), SIZE)
    return Reply(200, {"expand": "names,schema", "startAt": start, "maxResults": size, "total": RECORDS,
                       "issues": [{"id": str(10000 + i), "key": f"PROJ-{i}", "fields": {"summary": f"issue {i}"}}
                                  for i in IDS[start:start + size]]})


def jira_tokens(seen: Seen, base: str) -> Reply:
    """Jira Cloud /search/jql: ``nextPageToken`` back as ``nextPageToken=``, ``isLast`` on the last page."""
    start = _index(seen, "nextPageToken", _untoken)
    last = start + SIZE >= RECORDS
    body: dict = {"issues": [{"id": str(10000 + i), "key": f"PROJ-{i}", "fields": {"summary": f"issue {i}"}}
                             for i in _slice(start)], "isLast": last}
    if not last:
        body["nextPageToken"] = _token(start + SIZE)
    return Reply(200, body)


def zendesk(seen: Seen, base: str) -> Reply:
    """Zendesk cursor pagination: ``meta.has_more``/``after_cursor`` and ``links.next`` with ``page[after]``."""
    start = _index(seen, "page[after]", _untoken)
    more = start + SIZE < RECORDS
    after, before = _token(start + SIZE), _token(start)
    url = f"{base}/api/v2/tickets.json?page%5Bsize%5D={SIZE}"
    return Reply(200, {"tickets": [{"id": i, "subject": f"ticket {i}", "status": "open"} for i in _slice(start)],
                       "meta": {"has_more": more, "after_cursor": after, "before_cursor": before},
                       "links": {"prev": f"{url}&page%5Bbefore%5D={quote(before)}",
                                 "next": f"{url}&page%5Bafter%5D={quote(after)}"}})


def gitlab_headers(seen: Seen, base: str) -> Reply:
    """GitLab offset pagination as headers alone (``X-Next-Page`` empty on the last page, no Link)."""
    page = _index(seen, "page", default=1)
    start = (page - 1) * SIZE
    pages = -(-RECORDS // SIZE)
    headers = {"X-Page": str(page), "X-Per-Page": str(SIZE), "X-Next-Page": str(page + 1) if page < pages else "",
               "X-Prev-Page": str(page - 1) if page > 1 else "", "X-Total": str(RECORDS), "X-Total-Pages": str(pages)}
    return _list([{"id": i, "iid": i, "title": f"issue {i}", "state": "opened"} for i in _slice(start)], headers)


def gitlab_link(seen: Seen, base: str) -> Reply:
    """GitLab with its Link header too (page mid-query, rel first/last) and the X- headers."""
    reply = gitlab_headers(seen, base)
    page = int(reply.headers["X-Page"])
    pages = int(reply.headers["X-Total-Pages"])

    def url(n: int) -> str:
        return f"{base}/api/v4/projects/8/issues?id=8&page={n}&per_page={SIZE}&state=opened"

    links = [f'<{url(page + 1)}>; rel="next"'] if page < pages else []
    links += [f'<{url(1)}>; rel="first"', f'<{url(pages)}>; rel="last"']
    reply.headers["Link"] = ", ".join(links)
    return reply


def shopify(seen: Seen, base: str) -> Reply:
    """Shopify REST: ``Link`` with ``page_info`` (rel="previous"/"next"), records in ``products``."""
    start = _index(seen, "page_info", _untoken)
    url = f"{base}/admin/api/2024-01/products.json?limit={SIZE}&page_info="
    links = [f'<{url}{_token(start - SIZE)}>; rel="previous"'] if start else []
    if start + SIZE < RECORDS:
        links.append(f'<{url}{_token(start + SIZE)}>; rel="next"')
    headers = {"Link": ", ".join(links)} if links else {}
    return Reply(200, {"products": [{"id": 632910392 + i, "title": f"product {i}", "vendor": "Apple"}
                                    for i in _slice(start)]}, headers)


def strava(seen: Seen, base: str) -> Reply:
    """Strava: ``page``/``per_page``, a top-level list, no totals; the end is a short or empty page."""
    page, per_page = _index(seen, "page", default=1), _index(seen, "per_page", default=30)
    start = (page - 1) * per_page
    return _list([{"id": i, "name": f"Morning Run {i}", "distance": 1000.0 * i, "type": "Run"}
                  for i in IDS[start:start + per_page]])


def _spotify_page(seen: Seen, base: str, path: str) -> dict:
    start, limit = _index(seen, "offset"), _index(seen, "limit", default=20)

    def url(offset: int) -> str:
        return f"{base}{path}offset={offset}&limit={limit}"

    return {"href": url(start), "limit": limit, "offset": start, "total": RECORDS,
            "next": url(start + limit) if start + limit < RECORDS else None,
            "previous": url(max(start - limit, 0)) if start else None,
            "items": [{"id": f"4iV5W9uYEdYUVa79Axb7R{i}", "name": f"track {i}", "type": "track"}
                      for i in IDS[start:start + limit]]}


def spotify(seen: Seen, base: str) -> Reply:
    """Spotify: a paging object (``items``, ``next`` URL, ``offset``/``limit``/``total``)."""
    return Reply(200, _spotify_page(seen, base, "/v1/me/tracks?"))


def spotify_search(seen: Seen, base: str) -> Reply:
    """Spotify search: the paging object nested under the type searched for (``tracks``)."""
    return Reply(200, {"tracks": _spotify_page(seen, base, "/v1/search?q=abba&type=track&")})


def _article(i: int) -> dict:
    """A JSON:API resource object (jsonapi.org's own example): type, id, attributes, relationships, links."""
    return {"type": "articles", "id": str(i),
            "attributes": {"title": f"JSON:API paints my bikeshed {i}", "body": "The shortest article. Ever.",
                           "created": "2015-05-22T14:56:29.000Z"},
            "relationships": {"author": {"links": {"related": f"/articles/{i}/author"},
                                         "data": {"type": "people", "id": str(40 + i % 2)}},
                              "comments": {"data": [{"type": "comments", "id": str(100 + i)}]}},
            "links": {"self": f"/articles/{i}"}}


def jsonapi_pages(seen: Seen, base: str) -> Reply:
    """JSON:API page-based strategy: ``page[number]``/``page[size]`` (brackets percent-encoded in the links,
    as most servers send them), absolute links self/first/prev/next/last; no ``next`` on the last page."""
    number, size = _index(seen, "page[number]", default=1), _index(seen, "page[size]", default=10)
    pages = -(-RECORDS // size)

    def url(n: int) -> str:
        return f"{base}/articles?page%5Bnumber%5D={n}&page%5Bsize%5D={size}&sort=-created"

    links = {"self": url(number), "first": url(1), "last": url(pages)}
    if number > 1:
        links["prev"] = url(number - 1)
    if number < pages:
        links["next"] = url(number + 1)
    return Reply(200, {"jsonapi": {"version": "1.1"}, "meta": {"totalPages": pages}, "links": links,
                       "data": [_article(i) for i in IDS[(number - 1) * size:number * size]]},
                 {"Content-Type": "application/vnd.api+json"})


def jsonapi_cursor(seen: Seen, base: str) -> Reply:
    """JSON:API cursor pagination profile: ``page[after]``/``page[size]``, brackets as is, links relative to the
    server (``/articles?...``); ``next`` is null on the last page."""
    after, size = seen.query.get("page[after]"), _index(seen, "page[size]", default=10)
    start = 0 if after is None else _untoken(after)

    def url(cursor: str) -> str:
        return f"/articles?sort=-created&page[size]={size}&page[after]={cursor}"

    ids = IDS[start:start + size]
    return Reply(200, {"data": [_article(i) for i in ids],
                       "links": {"prev": None if not start else url(_token(start - size)),
                                 "next": url(_token(start + size)) if start + size < RECORDS else None},
                       "meta": {"page": {"estimatedTotal": {"bestGuess": RECORDS}}}},
                 {"Content-Type": "application/vnd.api+json"})


def _person(i: int) -> dict:
    return {"UserName": f"user{i}", "FirstName": f"First{i}", "LastName": f"Last{i}",
            "Emails": [f"user{i}@example.com"], "AddressInfo": [{"Address": f"{i} Main St", "City": {"Name": "Boise"}}]}


def odata_skip(seen: Seen, base: str) -> Reply:
    """OData v4 client-driven paging (TripPin ``People?$top=3&$count=true``): ``@odata.count``, no next link;
    the client asks ``$skip=``."""
    if seen.query.get("$count") != "true" or seen.query.get("$top") != str(SIZE):
        return _bad("$top and $count expected on every page")
    skip = _index(seen, "$skip")
    return Reply(200, {"@odata.context": f"{base}/TripPinRESTierService/$metadata#People", "@odata.count": RECORDS,
                       "value": [_person(i) for i in IDS[skip:skip + SIZE]]},
                 {"Content-Type": "application/json;odata.metadata=minimal;odata.streaming=true",
                  "OData-Version": "4.0"})


def odata_next_skip(seen: Seen, base: str) -> Reply:
    """OData v4 server-driven paging: ``@odata.nextLink`` moving ``$skip`` (ASP.NET Core OData's page size),
    with ``@odata.count``."""
    skip = _index(seen, "$skip")
    body = {"@odata.context": f"{base}/odata/$metadata#Products", "@odata.count": RECORDS,
            "value": [{"Id": i, "Name": f"product {i}", "Price": 1.5 * i} for i in IDS[skip:skip + SIZE]]}
    if skip + SIZE < RECORDS:
        body["@odata.nextLink"] = f"{base}/odata/Products?$count=true&$orderby=Id&$skip={skip + SIZE}"
    return Reply(200, body, {"OData-Version": "4.0"})


def odata_v3(seen: Seen, base: str) -> Reply:
    """OData v3 JSON light: ``odata.count`` (a string) and ``odata.nextLink`` relative to the service root
    (``Products?$inlinecount=allpages&$skip=3``), records in ``value``."""
    skip = _index(seen, "$skip")
    body = {"odata.metadata": f"{base}/V3/OData/OData.svc/$metadata#Products", "odata.count": str(RECORDS),
            "value": [{"ID": i, "Name": f"product {i}", "Rating": i % 5} for i in IDS[skip:skip + SIZE]]}
    if skip + SIZE < RECORDS:
        body["odata.nextLink"] = f"Products?$inlinecount=allpages&$skip={skip + SIZE}"
    return Reply(200, body, {"DataServiceVersion": "3.0"})


def odata_v2(seen: Seen, base: str) -> Reply:
    """OData v2 verbose JSON (SAP Gateway style): ``{"d": {"results": [...], "__count": "7", "__next": ...}}``,
    ``__next`` relative with a ``$skiptoken``, each record with its ``__metadata``."""
    start = int(seen.query.get("$skiptoken", "0"))
    d: dict = {"__count": str(RECORDS), "results": [
        {"__metadata": {"id": f"{base}/sap/opu/odata/sap/API_BP/A_BusinessPartner('{i}')",
                        "uri": f"{base}/sap/opu/odata/sap/API_BP/A_BusinessPartner('{i}')",
                        "type": "API_BP.A_BusinessPartnerType"},
         "BusinessPartner": str(i), "BusinessPartnerFullName": f"Partner {i}"} for i in IDS[start:start + SIZE]]}
    if start + SIZE < RECORDS:
        d["__next"] = f"A_BusinessPartner?$inlinecount=allpages&$skiptoken={start + SIZE}"
    return Reply(200, {"d": d}, {"DataServiceVersion": "2.0"})


CONVENTIONS = {  # name: (start path and query, fixture, the id column, the id of record i)
    "stripe": (f"/v1/customers?limit={SIZE}&created%5Bgte%5D=1700000000", stripe, "id", lambda i: f"cus_{i:03d}"),
    "stripe-search": (f"/v1/customers/search?query=email%7E%27example%27&limit={SIZE}", stripe_search, "id",
                      lambda i: f"cus_{i:03d}"),
    "slack": (f"/api/conversations.list?limit={SIZE}", slack, "id", lambda i: f"C{i:08d}"),
    "google": (f"/drive/v3/files?pageSize={SIZE}", google, "id", lambda i: f"1a{i}"),
    "microsoft-graph": (f"/v1.0/users?$top={SIZE}", graph, "displayName", lambda i: f"User {i}"),
    "hubspot": (f"/crm/v3/objects/contacts?limit={SIZE}", hubspot, "id", str),
    "x-api-v2": (f"/2/users/2244994945/tweets?max_results={SIZE}", x_api, "id", str),
    "x-api-v2-search": (f"/2/tweets/search/recent?query=from%3AXDevelopers&max_results={SIZE}", x_search, "id",
                        str),
    "airtable": (f"/v0/appXXXXXXXXXXXXXX/Table%201?pageSize={SIZE}", airtable, "id", lambda i: f"rec{i:014d}"),
    "salesforce": ("/services/data/v59.0/query?q=SELECT+Id,Name+FROM+Account", salesforce, "Id",
                   lambda i: f"001{i}"),
    "jira-startAt": (f"/rest/api/3/search?jql=project%3DPROJ&startAt=0&maxResults={SIZE}", jira, "key",
                     lambda i: f"PROJ-{i}"),
    "jira-startAt-capped": ("/rest/api/3/search?jql=project%3DPROJ&maxResults=1000", jira, "key",
                            lambda i: f"PROJ-{i}"),
    "jira-nextPageToken": (f"/rest/api/3/search/jql?jql=project%3DPROJ&maxResults={SIZE}", jira_tokens, "key",
                           lambda i: f"PROJ-{i}"),
    "zendesk-cursor": (f"/api/v2/tickets.json?page%5Bsize%5D={SIZE}", zendesk, "id", int),
    "gitlab-link": (f"/api/v4/projects/8/issues?id=8&per_page={SIZE}&state=opened", gitlab_link, "id", int),
    "gitlab-headers": (f"/api/v4/projects/8/issues?per_page={SIZE}&state=opened", gitlab_headers, "id", int),
    "shopify": (f"/admin/api/2024-01/products.json?limit={SIZE}", shopify, "title", lambda i: f"product {i}"),
    "strava": (f"/api/v3/athlete/activities?page=1&per_page={SIZE}", strava, "id", int),
    "spotify": (f"/v1/me/tracks?offset=0&limit={SIZE}", spotify, "name", lambda i: f"track {i}"),
    "spotify-search": (f"/v1/search?q=abba&type=track&limit={SIZE}", spotify_search, "name", lambda i: f"track {i}"),
    "jsonapi-page-number": (f"/articles?sort=-created&page%5Bsize%5D={SIZE}", jsonapi_pages, "attributes.title",
                            lambda i: f"JSON:API paints my bikeshed {i}"),
    "jsonapi-cursor": (f"/articles?sort=-created&page[size]={SIZE}", jsonapi_cursor, "attributes.title",
                       lambda i: f"JSON:API paints my bikeshed {i}"),
    "odata-v4-skip": (f"/TripPinRESTierService/People?$top={SIZE}&$count=true", odata_skip, "UserName",
                      lambda i: f"user{i}"),
    "odata-v4-nextLink-skip": ("/odata/Products?$count=true&$orderby=Id", odata_next_skip, "Name",
                               lambda i: f"product {i}"),
    "odata-v3": ("/V3/OData/OData.svc/Products?$inlinecount=allpages", odata_v3, "Name", lambda i: f"product {i}"),
    "odata-v2": ("/sap/opu/odata/sap/API_BP/A_BusinessPartner?$inlinecount=allpages&$format=json", odata_v2,
                 "BusinessPartnerFullName", lambda i: f"Partner {i}"),
}


@pytest.fixture
def signed_in(demo_provider):
    """nb_oauth2's own Session, signed in at the demo provider (its token goes to the scripted API)."""
    p = demo_provider
    s = oa.login("conventions", issuer=p.issuer, client_id=p.clients["public"].client_id, browser=p.driver.authorize)
    yield s
    s.forget()


@pytest.fixture(params=["requests", "nb_oauth2"])
def session(request):
    """A plain requests.Session, or nb_oauth2's signed-in Session (its bearer token on every page)."""
    return requests.Session() if request.param == "requests" else request.getfixturevalue("signed_in")


def _reordered(path: str) -> str:
    """``path`` with its query parameters in the reverse order (the page parameter moves)."""
    route, _, query = path.partition("?")
    return route + ("?" + "&".join(reversed(query.split("&"))) if query else "")


@pytest.mark.parametrize("order", ["documented", "reversed"])
@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("name", list(CONVENTIONS))
def test_read_json_detects_the_convention(scripted, session, name, concurrency, order):
    """No paginate=: every record once, in order, each page requested once, none refused, through a plain
    requests.Session and nb_oauth2's Session alike, whatever the order of the start URL's query."""
    start, fixture, column, record_id = CONVENTIONS[name]
    scripted.script("*", [lambda seen: fixture(seen, scripted.url)])
    start = start if order == "documented" else _reordered(start)
    frame = read_json(scripted.url + start, session=session, progress=False, concurrency=concurrency)
    assert frame[column].tolist() == [record_id(i) for i in IDS]
    assert len(scripted.seen) == -(-RECORDS // SIZE)
    bearer = {s.auth.startswith("Bearer ") if s.auth else False for s in scripted.seen}
    assert bearer == {isinstance(session, oa.Session)}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_stripe_with_the_declarative_override(scripted, concurrency):
    """Stripe, named: paginate=StartingAfterPaginator() asks starting_after=<last id> while has_more."""
    start, fixture, column, record_id = CONVENTIONS["stripe"]
    scripted.script("*", [lambda seen: fixture(seen, scripted.url)])
    frame = read_json(scripted.url + start, session=requests.Session(), progress=False, concurrency=concurrency,
                      paginate=StartingAfterPaginator())
    assert frame[column].tolist() == [record_id(i) for i in IDS]
    assert [s.query.get("starting_after") for s in scripted.seen] == [None, "cus_003", "cus_006"]


def test_stripe_iter_records_and_the_python_path(scripted):
    """The last id comes from the body when the records are in it (iter_records, no Arrow)."""
    start, fixture, _, record_id = CONVENTIONS["stripe"]
    scripted.script("*", [lambda seen: fixture(seen, scripted.url)])
    rows = list(iter_records(scripted.url + start, session=requests.Session(), paginate=StartingAfterPaginator()))
    assert [r["id"] for r in rows] == [record_id(i) for i in IDS]


def test_stripe_without_ids_is_an_error_not_a_short_read(scripted):
    """has_more with no id to start after: PaginationError naming has_more, never a silent page 1."""
    scripted.script("*", [Reply(200, {"object": "list", "has_more": True, "data": [{"email": "a@example.com"}]})])
    with pytest.raises(PaginationError, match="has_more"):
        read_json(scripted.url + "/v1/customers", session=requests.Session(), progress=False,
                  paginate=StartingAfterPaginator())


@pytest.mark.parametrize("concurrency", [1, 4])
def test_spotify_search_nested_under_its_type(scripted, concurrency):
    """Spotify search nests its paging object under ``tracks``: record_path=["tracks", "items"] still works
    (without it, the records are found too: the "spotify-search" convention above)."""
    scripted.script("*", [lambda seen: spotify_search(seen, scripted.url)])
    frame = read_json(f"{scripted.url}/v1/search?q=abba&type=track&limit={SIZE}",  # no offset= (optional)
                      session=requests.Session(), progress=False, concurrency=concurrency,
                      record_path=["tracks", "items"])
    assert frame["name"].tolist() == [f"track {i}" for i in IDS]
    assert len(scripted.seen) == -(-RECORDS // SIZE)


def test_strava_ends_at_an_empty_page(scripted):
    """Strava's pages are full up to the end (6 records over pages of 3): the empty page 3 ends the read."""
    def six(seen: Seen) -> Reply:
        page = _index(seen, "page", default=1)
        return _list([{"id": i, "name": f"Morning Run {i}"} for i in range(1, 7)][(page - 1) * SIZE:page * SIZE])

    scripted.script("*", [six])
    frame = read_json(f"{scripted.url}/api/v3/athlete/activities?page=1&per_page={SIZE}",
                      session=requests.Session(), progress=False)
    assert frame["id"].tolist() == list(range(1, 7))
    assert [s.query["page"] for s in scripted.seen] == ["1", "2", "3"]


@pytest.mark.parametrize("fast", ["0", "1"])
def test_stripe_detected_on_the_arrow_and_the_python_paths(scripted, monkeypatch, fast):
    """Detected Stripe asks starting_after=<last id> whether the records were read by Arrow (the walk hands the
    last id over) or as Python objects (the id is in the body)."""
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", fast)
    start, fixture, column, record_id = CONVENTIONS["stripe"]
    scripted.script("*", [lambda seen: fixture(seen, scripted.url)])
    frame = read_json(scripted.url + start, session=requests.Session(), progress=False)
    assert frame[column].tolist() == [record_id(i) for i in IDS]
    assert [s.query.get("starting_after") for s in scripted.seen] == [None, "cus_003", "cus_006"]
    assert list(scripted.seen[1].query) == ["limit", "created[gte]", "starting_after"]  # the API's order kept


@pytest.mark.parametrize("fast", ["0", "1"])
def test_stripe_detected_without_ids_is_an_error_not_a_short_read(scripted, session, monkeypatch, fast):
    """Case 62: a Stripe list whose records carry no id, has_more true: PaginationError naming has_more and the
    id, after one request (never a silent page 1); partial=True keeps page 1 with a warning."""
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", fast)
    scripted.script("*", [Reply(200, {"object": "list", "url": "/v1/balance_transactions", "has_more": True,
                                      "data": [{"object": "balance_transaction", "amount": 100}]})])
    with pytest.raises(PaginationError, match="'has_more'.*no 'id'"):
        read_json(scripted.url + "/v1/balance_transactions", session=session, progress=False)
    assert len(scripted.seen) == 1
    with pytest.warns(UserWarning, match="has_more"):
        frame = read_json(scripted.url + "/v1/balance_transactions", session=session, progress=False, partial=True)
    assert frame["amount"].tolist() == [100]


def spotify_two_types(seen: Seen, base: str) -> Reply:
    """Spotify search for two types: a paging object each, one offset for both, the same next URL while either
    has more (7 tracks, 4 artists)."""
    start, limit = _index(seen, "offset"), _index(seen, "limit", default=20)

    def paging(kind: str, total: int) -> dict:
        def url(offset: int) -> str:
            return f"{base}/v1/search?q=abba&type=track,artist&offset={offset}&limit={limit}"

        more = start + limit < max(RECORDS, 4)
        return {"href": url(start), "limit": limit, "offset": start, "total": total,
                "next": url(start + limit) if more else None, "previous": url(max(start - limit, 0)) if start else None,
                "items": [{"id": f"{kind}{i}", "name": f"{kind} {i}", "type": kind}
                          for i in range(1, total + 1)][start:start + limit]}

    return Reply(200, {"tracks": paging("track", RECORDS), "artists": paging("artist", 4)})


def test_spotify_search_for_two_types_names_the_record_path_to_pass(scripted, session):
    """Two paging objects (tracks and artists): no silent pick; a ConfigurationError names
    record_path=['tracks', 'items']; with it, every track once (the shared next URL followed to the end)."""
    scripted.script("*", [lambda seen: spotify_two_types(seen, scripted.url)])
    url = f"{scripted.url}/v1/search?q=abba&type=track,artist&limit={SIZE}"
    with pytest.raises(ConfigurationError, match=r"record_path=\['tracks', 'items'\]"):
        read_json(url, session=session, progress=False)
    scripted.reset()
    scripted.script("*", [lambda seen: spotify_two_types(seen, scripted.url)])
    frame = read_json(url, session=session, progress=False, record_path=["tracks", "items"])
    assert frame["name"].tolist() == [f"track {i}" for i in IDS]
    assert len(scripted.seen) == -(-RECORDS // SIZE)


@pytest.mark.parametrize("fast", ["0", "1"])
def test_jsonapi_resource_objects_become_columns(scripted, monkeypatch, fast):
    """JSON:API records, decided: the columns pd.json_normalize would make, so nothing is renamed or lost --
    ``id``, ``type``, ``attributes.<name>`` (not bare names: an attribute may itself be called ``id`` or
    ``type``, and 0.1 already read ``attributes.title``), ``relationships.<name>.data.id`` for a to-one
    relationship, ``relationships.<name>.data`` (a list of identifiers) for a to-many one; ``included``
    stays out of the rows (read it with record_path="included")."""
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", fast)
    scripted.script("*", [lambda seen: jsonapi_pages(seen, scripted.url)])
    frame = read_json(f"{scripted.url}/articles?page[size]={SIZE}", session=requests.Session(), progress=False)
    assert {"id", "type", "attributes.title", "attributes.created", "relationships.author.data.id",
            "relationships.author.data.type", "relationships.comments.data", "links.self"} <= set(frame.columns)
    assert frame["id"].tolist() == [str(i) for i in IDS] and set(frame["type"]) == {"articles"}
    assert frame["relationships.author.data.id"].tolist() == [str(40 + i % 2) for i in IDS]
    assert list(frame["relationships.comments.data"].iloc[0]) == [{"type": "comments", "id": "101"}]


@pytest.mark.parametrize("where", ["links.next", "odata.nextLink", "@odata.nextLink", "d.__next"])
def test_case_34_jsonapi_and_odata_next_links_to_another_host_never_get_the_token(scripted, signed_in, where):
    """Case 34: a JSON:API or OData next link to another origin (absolute, or protocol-relative where the field
    is always a URL) -> UnsafeNextLink; the other server gets no request, so never the token."""
    foreign = ScriptedServer()
    try:
        foreign.script("*", [Reply(200, {"data": [{"stolen": True}]})])
        elsewhere = foreign.url + "/articles?page%5Bnumber%5D=2"
        bodies = {"links.next": {"data": [{"type": "a", "id": "1"}], "links": {"next": elsewhere}},
                  "odata.nextLink": {"odata.count": "7", "value": [{"ID": 1}],
                                     "odata.nextLink": "//" + elsewhere.split("://", 1)[1]},
                  "@odata.nextLink": {"@odata.count": 7, "value": [{"ID": 1}], "@odata.nextLink": elsewhere},
                  "d.__next": {"d": {"__count": "7", "results": [{"ID": 1}], "__next": elsewhere}}}
        scripted.script("*", [Reply(200, bodies[where])])
        with pytest.raises(UnsafeNextLink):
            read_json(scripted.url + "/start?$top=1", session=signed_in, progress=False, concurrency=4)
        assert foreign.seen == [] and scripted.seen[0].auth.startswith("Bearer ")
    finally:
        foreign.close()


class _InFlight:
    """Wraps a fixture: counts the requests in flight at once; a request after the first waits (up to 0.5 s)
    for a second one, so a concurrent reader always shows an overlap and a sequential one never can."""

    def __init__(self, fixture: Callable[[Seen, str], Reply], base: str) -> None:
        self.fixture, self.base = fixture, base
        self.now = self.most = self.served = 0
        self.cond = threading.Condition()

    def __call__(self, seen: Seen) -> Reply:
        with self.cond:
            self.now += 1
            self.served += 1
            self.most = max(self.most, self.now)
            self.cond.notify_all()
            if self.served > 1:
                self.cond.wait_for(lambda: self.most > 1, timeout=0.5)
        try:
            return self.fixture(seen, self.base)
        finally:
            with self.cond:
                self.now -= 1


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("name", ["odata-v4-skip", "odata-v4-nextLink-skip", "odata-v3", "jsonapi-page-number"])
def test_counted_conventions_fetch_the_rest_concurrently(scripted, name, concurrency):
    """Page 1 tells the count (@odata.count, odata.count, JSON:API meta.totalPages): pages 2.. are planned and
    fetched concurrently (OData's client-driven $skip too); with concurrency=1, one at a time."""
    start, fixture, column, record_id = CONVENTIONS[name]
    counter = _InFlight(fixture, scripted.url)
    scripted.script("*", [counter])
    frame = read_json(scripted.url + start, session=requests.Session(), progress=False, concurrency=concurrency)
    assert frame[column].tolist() == [record_id(i) for i in IDS]
    assert (counter.most > 1) == (concurrency > 1) and counter.served == -(-RECORDS // SIZE)
