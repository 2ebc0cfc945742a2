"""``%%oauth2 graphql URL``: the cell's GraphQL query into a DataFrame (a sub-command of :mod:`.magics`).

The cell body is the query; ``--var NAME=VALUE`` and ``--variables DICT`` (a dict in the notebook) are
its variables; the value returned is :func:`nb_oauth2.read_graphql`'s DataFrame, so a notebook shows it
and ``df = _`` keeps it. A variable named like a secret is refused (SECURITY_CASES 35 and 59: IPython
keeps every line in history.sqlite) and no error repeats a value typed on the line.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any, Callable, Mapping

from IPython.core.error import UsageError

from ..core.errors import SecretOnCommandLine

__all__ = ["add_parser", "graphql_variables", "run"]

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")


def add_parser(sub: Any) -> None:
    """The ``graphql`` sub-command's options (argparse sub-parsers of ``%oauth2``)."""
    graphql = sub.add_parser("graphql", help="%%%%oauth2 graphql URL: the cell's GraphQL query into a DataFrame "
                                             "(every page of one connection)")
    graphql.add_argument("url", help="GraphQL endpoint URL ({...} and $ are not expanded)")
    graphql.add_argument("--session", help="session name (default: the default session)")
    graphql.add_argument("--path", help="the connection in data, dotted (e.g. repository.issues; default: the "
                                        "one connection in the answer)")
    graphql.add_argument("--var", action="append", metavar="NAME=VALUE",
                         help="a query variable (repeatable); VALUE is read as JSON when it parses (3, true, "
                              "null, [..], '\"text\"'), else as text")
    graphql.add_argument("--variables", metavar="DICT",
                         help="the name of a dict in the notebook holding the variables (--var adds to it)")
    graphql.add_argument("--cursor-variable", default="after", metavar="NAME",
                         help="the variable pageInfo.endCursor is sent back in (default after)")
    graphql.add_argument("--max-pages", type=int, help="stop after N pages (default 10,000)")
    graphql.add_argument("--partial", action="store_true", help="keep the pages read when a cap stops the read")
    graphql.add_argument("--no-progress", action="store_true", help="no progress bar")


def graphql_variables(items: list[str] | None, *, is_secret: Callable[[str], bool]) -> dict[str, Any]:
    """``--var NAME=VALUE`` options as a dict; VALUE is JSON when it parses, else text. ``is_secret(option)``
    says whether ``--NAME`` looks like a secret option: such a variable is refused (case 59)."""
    out: dict[str, Any] = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep or not _NAME.match(name):
            raise UsageError("%%oauth2 graphql: --var takes NAME=VALUE, NAME a GraphQL variable name (values from "
                             "the line are not repeated).")
        if is_secret("--" + name):
            raise SecretOnCommandLine(
                f"--var {name}=... is refused on a magic line: a secret does not belong in a command. IPython has "
                "already saved this line to its history (history.sqlite), so treat that value as exposed. Put the "
                "variables in a dict in the notebook and pass --variables DICT.")
        try:
            out[name] = json.loads(text)
        except ValueError:
            out[name] = text
    return out


def _notebook_dict(user_ns: Mapping[str, Any], name: str) -> dict:
    """The dict called ``name`` in the notebook's namespace (--variables)."""
    if not name.isidentifier():
        raise UsageError("%%oauth2 graphql: --variables takes the name of a dict in the notebook.")
    value = user_ns.get(name)
    if not isinstance(value, dict):
        raise UsageError(f"%%oauth2 graphql: --variables {name}: there is no dict named {name} in the notebook.")
    return value


def run(args: argparse.Namespace, query: str | None, *, user_ns: Mapping[str, Any], progress: bool,
        is_secret: Callable[[str], bool]) -> Any:
    """The DataFrame of ``%%oauth2 graphql`` (``query``: the cell body; None when used as a line magic)."""
    from .. import api
    from ..frames.post_pages import DEFAULT_MAX_PAGES

    if query is None:
        raise UsageError("%oauth2 graphql is a cell magic: %%oauth2 graphql URL [options], then the GraphQL "
                         "query in the cell.")
    if not query.strip():
        raise UsageError("%%oauth2 graphql: the cell is empty; write the GraphQL query in it.")
    variables = dict(_notebook_dict(user_ns, args.variables)) if args.variables else {}
    variables.update(graphql_variables(args.var, is_secret=is_secret))
    max_pages = DEFAULT_MAX_PAGES if args.max_pages is None else args.max_pages
    return api.read_graphql(args.url, query, variables, session=args.session, path=args.path,
                            cursor_variable=args.cursor_variable, max_pages=max_pages, partial=args.partial,
                            progress=progress and not args.no_progress)
