"""read_graphql (issue 13 item 2): GraphQL connections paged by pageInfo.endCursor -> ``after``.

The fixture answers as GitHub's GraphQL API (v4) documents ``POST /graphql``: ``{"data": {"repository":
{"issues": {"totalCount", "pageInfo": {"hasNextPage", "endCursor"}, "nodes": [...]}}}}`` with nested
objects (``author { login }``, ``labels { nodes { name } }``), errors inside a 200 answer (``type``
NOT_FOUND, INSUFFICIENT_SCOPES, RATE_LIMITED, an invalid cursor beside partial data). It checks the
Bearer token and that ``after`` is exactly the cursor it handed out (anything else is GitHub's
"does not appear to be a valid cursor" error). 7 issues over ``first: 3``: 3, 3, 1.
"""

from __future__ import annotations

import base64
import json
import time

import pandas as pd
import pytest
import requests

from nb_oauth2.core.errors import (APIError, ConfigurationError, InsufficientScope, InvalidToken, PaginationError,
                                   RateLimited)
from nb_oauth2.frames.graphql import read_graphql
from tests.scripted_server import Reply, Seen

TOKEN = "ghp_canaryGRAPHQL0123456789abcdefABCDEF0123"
RECORDS, SIZE = 7, 3
QUERY = """
query($owner: String!, $name: String!, $first: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    issues(first: $first, after: $after, states: [OPEN, CLOSED], orderBy: {field: CREATED_AT, direction: ASC}) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { number title state createdAt author { login } labels(first: 5) { nodes { name } } }
    }
  }
}
"""
EDGES_QUERY = QUERY.replace("nodes { number", "edges { cursor node { number").replace("name } } }", "name } } } }")
VARIABLES = {"owner": "octocat", "name": "Hello-World", "first": SIZE}


def cursor(i: int) -> str:
    """GitHub's opaque cursors: base64 of ``cursor:v2:`` and a packed id."""
    return base64.b64encode(f"cursor:v2:\x91\xce{i:08d}".encode("latin-1")).decode()


def issue(i: int) -> dict:
    return {"number": 1340 + i, "title": f"Found a bug #{i}", "state": "OPEN" if i % 3 else "CLOSED",
            "createdAt": f"2011-01-{10 + i}T19:01:12Z",
            "author": {"login": "octocat"} if i != 4 else None,  # a deleted user ("ghost") comes back null
            "labels": {"nodes": [{"name": "bug"}] + ([{"name": "help wanted"}] if i % 2 else [])}}


def _errors(*errors: dict, data=None) -> Reply:
    body = {"errors": list(errors)}
    if data is not None:
        body["data"] = data
    return Reply(200, body, {"Content-Type": "application/json; charset=utf-8"})


def github(token: str = TOKEN, *, total: int = RECORDS, edges: bool = False, variable: str = "after"):
    """POST /graphql answering the issues query page by page (``reply(seen)``)."""
    cursors = {cursor(i): i for i in range(1, total + 1)}

    def reply(seen: Seen) -> Reply:
        if seen.auth not in (f"Bearer {token}", f"bearer {token}"):
            return Reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/graphql"},
                         {"WWW-Authenticate": 'Bearer realm="GitHub"'})
        request = json.loads(seen.body)
        variables = request.get("variables") or {}
        if "repository(" not in request.get("query", "") or variables.get("first") != SIZE:
            return _errors({"message": "Parse error on \"}\" (RCURLY) at [1, 2]", "locations": [{"line": 1}]})
        after = variables.get(variable)
        start = 0 if after is None else cursors.get(after)
        if start is None:
            return _errors({"type": "INVALID_CURSOR_ARGUMENTS", "path": ["repository", "issues"],
                            "locations": [{"line": 4, "column": 5}],
                            "message": f"`{after}` does not appear to be a valid cursor."},
                           data={"repository": {"issues": None}})
        numbers = list(range(start + 1, min(start + SIZE, total) + 1))
        end = numbers[-1] if numbers else None
        info = {"hasNextPage": start + SIZE < total, "endCursor": cursor(end) if end else None}
        if edges:
            connection = {"totalCount": total, "pageInfo": info,
                          "edges": [{"cursor": cursor(i), "node": issue(i)} for i in numbers]}
        else:
            connection = {"totalCount": total, "pageInfo": info, "nodes": [issue(i) for i in numbers]}
        return Reply(200, {"data": {"repository": {"issues": connection}}},
                     {"Content-Type": "application/json; charset=utf-8", "X-RateLimit-Limit": "5000",
                      "X-RateLimit-Remaining": "4990", "X-RateLimit-Used": "10", "X-RateLimit-Resource": "graphql"})

    return reply


@pytest.fixture(params=["requests", "nb_oauth2"])
def signed_in(request):
    """(session, the token it sends): a plain requests.Session with a personal access token, or
    nb_oauth2's Session signed in at the demo provider (its token goes to the GraphQL server)."""
    if request.param == "requests":
        plain = requests.Session()
        plain.headers["Authorization"] = f"bearer {TOKEN}"
        return plain, TOKEN
    session = request.getfixturevalue("demo_session")
    return session, session.token_info.access_token


@pytest.fixture
def plain():
    session = requests.Session()
    session.headers["Authorization"] = f"bearer {TOKEN}"
    return session


def test_github_issues_every_page_nested_columns(scripted, signed_in):
    """7 issues over first: 3 (a partial last page): every node once, in order; endCursor sent back as after."""
    session, token = signed_in
    scripted.script("/graphql", [github(token)])
    frame = read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, path="repository.issues", session=session,
                         progress=False)
    assert frame["number"].tolist() == [1340 + i for i in range(1, RECORDS + 1)]
    assert frame["author.login"].isna().tolist() == [False] * 3 + [True] + [False] * 3  # a ghost author
    assert set(frame["author.login"].dropna()) == {"octocat"}
    assert [len(labels) for labels in frame["labels.nodes"]] == [2, 1, 2, 1, 2, 1, 2]
    assert frame["labels.nodes"].iloc[0] == [{"name": "bug"}, {"name": "help wanted"}]
    sent = [json.loads(s.body) for s in scripted.seen]
    assert [b["variables"].get("after") for b in sent] == [None, cursor(3), cursor(6)]
    assert all(b["query"] == QUERY and {k: v for k, v in b["variables"].items() if k != "after"} == VARIABLES
               for b in sent)


def test_edges_node_and_a_found_connection(scripted, plain):
    """edges[].node are the records too; with no path= the one connection in data is found."""
    scripted.script("/graphql", [github(edges=True)])
    frame = read_graphql(scripted.url + "/graphql", EDGES_QUERY, VARIABLES, session=plain, progress=False)
    assert frame["number"].tolist() == [1340 + i for i in range(1, RECORDS + 1)]
    assert "author.login" in frame.columns and "cursor" not in frame.columns


@pytest.mark.parametrize("path", ["data.repository.issues", ["repository", "issues"]])
def test_path_spellings(scripted, plain, path):
    scripted.script("/graphql", [github()])
    frame = read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, path=path, session=plain, progress=False)
    assert len(frame) == RECORDS


def test_an_odd_count_on_full_pages_and_an_empty_result(scripted, plain):
    scripted.script("/graphql", [github(total=6)])
    frame = read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, path="repository.issues", session=plain,
                         progress=False)
    assert len(frame) == 6 and len(scripted.seen) == 2
    scripted.reset()
    scripted.script("/graphql", [github(total=0)])
    empty = read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, path="repository.issues", session=plain,
                         progress=False)
    assert isinstance(empty, pd.DataFrame) and len(empty) == 0 and len(scripted.seen) == 1


def test_a_custom_cursor_variable(scripted, plain):
    scripted.script("/graphql", [github(variable="cursor")])
    query = QUERY.replace("$after", "$cursor")
    frame = read_graphql(scripted.url + "/graphql", query, VARIABLES, path="repository.issues", session=plain,
                         cursor_variable="cursor", progress=False)
    assert len(frame) == RECORDS


def test_errors_without_data_raise_a_typed_error(scripted, plain):
    scripted.script("/graphql", [_errors({"type": "NOT_FOUND", "path": ["repository"], "locations": [{"line": 3}],
                                          "message": "Could not resolve to a Repository with the name "
                                                     "'octocat/nope'."}, data={"repository": None})])
    with pytest.raises(APIError, match="Could not resolve to a Repository") as caught:
        read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, path="repository.issues", session=plain,
                     progress=False)
    assert type(caught.value) is APIError and caught.value.error == "NOT_FOUND" and caught.value.status == 200


def test_partial_data_with_errors_raises_too(scripted, plain):
    """An invalid cursor comes back as errors beside data {'repository': {'issues': None}}: raised, never
    read as an empty last page."""
    scripted.script("/graphql", [github()])
    variables = {**VARIABLES, "after": "Y3Vyc29yOnYyOnN0YWxl"}
    with pytest.raises(APIError, match="partial data.*does not appear to be a valid cursor") as caught:
        read_graphql(scripted.url + "/graphql", QUERY, variables, path="repository.issues", session=plain,
                     progress=False)
    assert caught.value.error == "INVALID_CURSOR_ARGUMENTS"


def test_insufficient_scopes_and_bad_credentials(scripted, plain):
    scripted.script("/graphql", [_errors({"type": "INSUFFICIENT_SCOPES", "locations": [{"line": 3}],
                                          "message": "Your token has not been granted the required scopes to execute "
                                                     "this query. The 'login' field requires one of the following "
                                                     "scopes: ['read:org']"})])
    with pytest.raises(InsufficientScope, match="read:org"):
        read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, session=plain, progress=False)
    scripted.reset()
    scripted.script("/graphql", [github(token="someone-else")])
    with pytest.raises(InvalidToken):
        read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, session=plain, progress=False)


def _rate_limited(reset_in: float) -> Reply:
    return Reply(200, {"errors": [{"type": "RATE_LIMITED", "code": "graphql_rate_limit",
                                   "message": "API rate limit exceeded for user ID 583231."}]},
                 {"Content-Type": "application/json", "X-RateLimit-Remaining": "0",
                  "X-RateLimit-Reset": str(int(time.time() + reset_in))})


class FakeClock:
    """The fetcher's clock and sleep: sleeping moves the clock on at once (and is recorded)."""

    def __init__(self) -> None:
        self.now, self.waits = time.time(), []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_rate_limited_in_a_200_is_waited_out_then_read(scripted, plain):
    """GitHub's primary limit: 200 with errors type RATE_LIMITED and X-RateLimit-Reset: waited out, then read."""
    clock = FakeClock()
    scripted.script("/graphql", [_rate_limited(5), github()])
    frame = read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, path="repository.issues", session=plain,
                         progress=False, fetcher_options={"sleep": clock.sleep, "clock": clock.time})
    assert len(frame) == RECORDS and len(scripted.seen) == 1 + 3
    assert 3 <= sum(clock.waits) <= 7  # until the reset, not twice over


def test_rate_limited_past_max_wait_raises_rate_limited(scripted, plain):
    waits: list[float] = []
    scripted.script("/graphql", [_rate_limited(3600)])
    with pytest.raises(RateLimited, match="rate limit exceeded"):
        read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, session=plain, progress=False,
                     fetcher_options={"sleep": waits.append})
    assert waits == [] and len(scripted.seen) == 1


def test_more_pages_without_an_after_variable_is_an_error(scripted, plain):
    """A query that cannot take the cursor would read page 1 again and again: refused after page 1."""
    scripted.script("/graphql", [github()])
    query = QUERY.replace(", $after: String", "").replace(", after: $after", "")
    with pytest.raises(PaginationError, match=r"declares no \$after"):
        read_graphql(scripted.url + "/graphql", query, VARIABLES, path="repository.issues", session=plain,
                     progress=False)
    assert len(scripted.seen) == 1


def test_has_next_page_without_an_end_cursor_and_a_repeated_cursor(scripted, plain):
    page = {"data": {"repository": {"issues": {"totalCount": 9, "pageInfo": {"hasNextPage": True, "endCursor": None},
                                               "nodes": [issue(1)]}}}}
    scripted.script("/graphql", [Reply(200, page)])
    with pytest.raises(PaginationError, match="pageInfo.endCursor"):
        read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, session=plain, progress=False)
    page["data"]["repository"]["issues"]["pageInfo"]["endCursor"] = cursor(1)
    scripted.script("/graphql", [Reply(200, page)])
    with pytest.warns(UserWarning, match="same cursor twice"):
        frame = read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, session=plain, progress=False,
                             partial=True)
    assert len(frame) == 2


def test_no_page_info_while_total_count_says_more(scripted, plain):
    page = {"data": {"repository": {"issues": {"totalCount": 7, "nodes": [issue(1), issue(2), issue(3)]}}}}
    scripted.script("/graphql", [Reply(200, page)])
    with pytest.raises(PaginationError, match="pageInfo"):
        read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, session=plain, progress=False)


def test_a_wrong_path_names_what_is_there(scripted, plain):
    scripted.script("/graphql", [github()])
    with pytest.raises(APIError, match=r"no 'pullRequests' at 'data.repository' \(found \['issues'\]\)"):
        read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, path="repository.pullRequests", session=plain,
                     progress=False)


def test_an_answer_that_is_not_graphql(scripted, plain):
    scripted.script("/graphql", [Reply(200, {"items": []})])
    with pytest.raises(APIError, match="without data or errors"):
        read_graphql(scripted.url + "/graphql", QUERY, session=plain, progress=False)


@pytest.mark.parametrize("call, match", [
    (lambda url, s: read_graphql(url, "", session=s), "query"),
    (lambda url, s: read_graphql(url, QUERY, [1], session=s), "variables="),
    (lambda url, s: read_graphql(url, QUERY, session=s, cursor_variable="$after"), "cursor_variable="),
    (lambda url, s: read_graphql(url, QUERY, session="github"), "requests.Session"),
    (lambda url, s: read_graphql("graphql", QUERY, session=s), "http"),
])
def test_bad_arguments_are_configuration_errors_before_any_request(scripted, call, match):
    with pytest.raises(ConfigurationError, match=match):
        call(scripted.url + "/graphql", requests.Session())
    assert scripted.seen == []


def test_the_public_face_resolves_session_names(scripted, demo_session):
    """nb_oauth2.read_graphql takes a session's name, as read_json does."""
    import nb_oauth2

    scripted.script("/graphql", [github(demo_session.token_info.access_token)])
    frame = nb_oauth2.read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, path="repository.issues",
                                   session=demo_session.name, progress=False)
    assert len(frame) == RECORDS


def test_the_progress_bar_counts_pages_and_rows(scripted, plain, capsys):
    scripted.script("/graphql", [github()])
    read_graphql(scripted.url + "/graphql", QUERY, VARIABLES, path="repository.issues", session=plain)
    shown = capsys.readouterr().err
    assert "3/3" in shown and "rows=7" in shown and TOKEN not in shown
