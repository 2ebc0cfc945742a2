"""``%oauth2``: IPython magics over the plain-Python API (``%load_ext nb_oauth2``).

A thin, configurable shell in the style of jupysql: arguments are parsed with
argparse sub-commands (``%oauth2?`` prints the real help), options are
traitlets (``%config OAuth2Magics.default_profile = "github"``), package errors
become a one-line ``UsageError`` with a redacted message, and no sub-command
returns anything that shows a token. Secrets are refused on the line
(SECURITY_CASES 35): IPython keeps every line in ``history.sqlite``; a
misspelled secret option is refused too, and no error repeats a value typed
on the line (case 59). ``%%oauth2 graphql URL`` runs the cell's GraphQL query
(:func:`nb_oauth2.read_graphql`) and returns the DataFrame.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Enum, TraitError, Unicode, validate
from traitlets.config import Configurable

from ..core.errors import OAuth2Error, SecretOnCommandLine
from ..core.names import FLOW_CHOICES, STORE_CHOICES, VIA_CHOICES, env_name, split_list
from ..frames.pagination import PAGINATION_STYLES
from ..core.redact import redact
from . import error_display, graphql_cell

__all__ = ["OAuth2Magics", "load_ipython_extension", "BROWSER_HOOK", "DEVICE_HOOK", "SECRET_OPTIONS", "STORE_CHOICES"]

#: ``Callable[[authorization_url], redirect_url]`` doing the browser's part (tests, headless runs)
BROWSER_HOOK: Callable[[str], str] | None = None
#: ``Callable[[Step], None]`` told the user code of a device login (tests, headless runs)
DEVICE_HOOK: Callable[[Any], None] | None = None

SECRET_OPTIONS = ("--client-secret", "--secret", "--password", "--token", "--access-token", "--refresh-token")
#: an unknown option whose name holds one of these is taken for a (misspelled) secret option (case 59)
_SECRET_WORDS = ("secret", "password", "passwd", "pwd", "token", "apikey", "credential")
_OPTION_NAME = re.compile(r"^(?:--[A-Za-z][A-Za-z0-9_-]{0,30}|-[a-z][a-z0-9_-]{0,30})$")  # what a typed option name looks like (shown)


class _HelpShown(Exception):
    """argparse printed help (``--help``); nothing else to do."""


class _ParseError(Exception):
    """argparse refused the line; the message may quote values from it (scrubbed before display)."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog, self.message = prog, message


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # '--cl X' is not silently --client-id
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ParseError(self.prog, message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr)
        raise _HelpShown()


def build_parser() -> _Parser:
    """The ``%oauth2`` command line: one sub-parser per sub-command."""
    parser = _Parser(prog="%oauth2", description="Sign in to OAuth 2 APIs and load their JSON into DataFrames.",
                     epilog="Secrets never go on the line: use NB_OAUTH2_<PROFILE>_CLIENT_SECRET, keyring or "
                            "the prompt. Options: %config OAuth2Magics.default_profile / default_store / "
                            "show_traceback / progress.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    login = sub.add_parser("login", help="sign in with a profile (widget in notebooks, prompt in terminals)")
    login.add_argument("profile", nargs="?", help="profile or preset name (default: OAuth2Magics.default_profile)")
    login.add_argument("--scope", action="append", help='scopes, space or comma separated ("read:user repo")')
    login.add_argument("--flow", choices=FLOW_CHOICES, help="grant (default: the profile's, else code with PKCE)")
    login.add_argument("--via", choices=VIA_CHOICES, default="auto", help="how the redirect comes back (default auto)")
    login.add_argument("--store", choices=STORE_CHOICES,
                       help="token store: memory (this kernel), file or keyring (default OAuth2Magics.default_store)")
    login.add_argument("--name", help="session name (default: the profile name)")
    login.add_argument("--client-id", help="OAuth client id (public; secrets come from env/keyring/prompt)")
    login.add_argument("--issuer", help="issuer URL to discover (OIDC / RFC 8414)")
    login.add_argument("--cert", help="TLS client certificate (PEM) for mTLS")
    login.add_argument("--key", help="private key of --cert (PEM)")
    login.add_argument("--no-wait", action="store_true",
                       help="in a notebook, show the login widget and return at once instead of waiting")
    sub.add_parser("status", help="every session: provider, scopes, expiry, fingerprint")
    refresh = sub.add_parser("refresh", help="refresh a session's token now")
    refresh.add_argument("name", nargs="?", help="session (default: the default session)")
    logout = sub.add_parser("logout", help="forget a session's tokens")
    logout.add_argument("name", nargs="?", help="session (default: the default session)")
    logout.add_argument("--revoke", action="store_true", help="revoke at the provider first (RFC 7009)")
    sub.add_parser("providers", help="built-in provider presets")
    use = sub.add_parser("use", help="make a session the default")
    use.add_argument("profile", help="session name")
    sub.add_parser("redirect-uri", help="the redirect URI to register for this environment")
    get = sub.add_parser("get", help="GET a protected JSON API into a DataFrame (every page)")
    get.add_argument("url", help="API URL ({...} and $ are not expanded)")
    get.add_argument("--session", help="session name (default: the default session)")
    get.add_argument("--record-path", help="where the records are in each page (dotted path)")
    get.add_argument("--max-pages", type=int, help="stop after N pages (default 10,000)")
    get.add_argument("--paginate", default="auto", choices=sorted(PAGINATION_STYLES),
                     help="the pagination style: auto (detected from page 1), link, next, cursor, page, offset or none")
    get.add_argument("--partial", action="store_true", help="keep the pages read when a cap stops the read")
    get.add_argument("--no-progress", action="store_true", help="no progress bar")
    profile = sub.add_parser("profile", help="%%%%oauth2 profile NAME: define a profile from a TOML cell body")
    profile.add_argument("name", help="profile name")
    graphql_cell.add_parser(sub)
    return parser


def full_help() -> str:
    parser = build_parser()
    parts = [parser.format_help()]
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        parts.append(f"\n--- %oauth2 {name} ---\n{sub.format_help()}")
    return "".join(parts)


def _is_secret_option(token: str) -> bool:
    option = token.split("=", 1)[0].lower().replace("_", "-")
    if option in SECRET_OPTIONS:
        return True
    squashed = re.sub(r"[^a-z]", "", option)
    return token.startswith("-") and any(word in squashed for word in _SECRET_WORDS)


def refuse_secrets(argv: list[str]) -> None:
    """Cases 35 and 59: a secret option typed on a magic line, even misspelled, is refused (it is in
    history.sqlite already); the message names the option, never its value."""
    for i, token in enumerate(argv):
        if not _is_secret_option(token):
            continue
        option = token.split("=", 1)[0]
        option = option if _OPTION_NAME.match(option) else "A secret option"
        named = argv[0] == "login" and i > 1 and not argv[1].startswith("-")
        profile = argv[1] if named else "<PROFILE>"
        variable = env_name(profile, "client_secret") if profile != "<PROFILE>" else "NB_OAUTH2_<PROFILE>_CLIENT_SECRET"
        raise SecretOnCommandLine(
            f"{option} is refused on a magic line: secrets do not belong in commands. IPython has already "
            f"saved this line to its history (history.sqlite), so treat that secret as exposed and rotate it. "
            f"Put the client secret in the environment variable {variable}, in keyring "
            f"(keyring set nb_oauth2 {profile}:client_secret), or leave it out and type it at the getpass prompt."
        )


def _vocabulary(parser: argparse.ArgumentParser) -> set[str]:
    """Words the parser itself knows (commands, option names, choices): safe to show."""
    words: set[str] = set()
    for action in parser._actions:
        words.update(action.option_strings)
        words.update(str(c) for c in (action.choices or ()))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                words |= _vocabulary(sub)
    return words


def scrub_parse_error(error: _ParseError, argv: list[str], parser: argparse.ArgumentParser) -> str:
    """argparse's message without any value typed on the line (case 59): option names stay."""
    message = error.message
    if message.startswith("unrecognized arguments:"):
        extras = message.split(":", 1)[1].split()
        names = [e.split("=", 1)[0] for e in extras if _OPTION_NAME.match(e.split("=", 1)[0])]
        hidden = sum(1 for e in extras if not _OPTION_NAME.match(e.split("=", 1)[0]) or "=" in e)
        message = "unrecognized arguments: " + ", ".join(names + ([f"{hidden} value(s) not shown"] if hidden else []))
    message = re.sub(r"(invalid (?:choice|\w+ value)): ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")",
                     r"\1 (value not shown)", message)
    known = _vocabulary(parser)
    values = {part for token in argv for part in ([token.split("=", 1)[1]] if token.startswith("-") and "=" in token
                                                   else [] if token.startswith("-") else [token])}
    for value in sorted(values - known, key=len, reverse=True):
        if value:
            message = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", "<value>", message)
    return f"{error.prog}: {message}. See %oauth2? for help (values from the line are not repeated)."


@magics_class
class OAuth2Magics(Magics, Configurable):
    """The ``%oauth2`` line magic and the ``%%oauth2 profile`` / ``%%oauth2 graphql`` cell magics."""

    default_profile = Unicode("demo", help="profile used by %oauth2 login without a name").tag(config=True)
    default_store = Enum(("", *STORE_CHOICES), default_value="",
                         help="token store: memory (this kernel only), file or keyring; empty: the profile's "
                              "setting, NB_OAUTH2_<PROFILE>_STORE or NB_OAUTH2_STORE, else memory").tag(config=True)
    show_traceback = Bool(False, help="show full tracebacks of nb_oauth2 errors").tag(config=True)
    progress = Bool(True, help="progress bar for %oauth2 get").tag(config=True)

    @validate("default_profile")
    def _check_default_profile(self, proposal: Any) -> str:
        value = proposal["value"]
        if not value.strip() or value != value.strip() or any(c.isspace() for c in value):
            raise TraitError("OAuth2Magics.default_profile must be a profile name: not empty, no spaces.")
        return value

    @no_var_expand
    @line_cell_magic
    def oauth2(self, line: str = "", cell: str | None = None) -> Any:
        try:
            return self._dispatch(line, cell)
        except _HelpShown:
            return None
        except SecretOnCommandLine as exc:  # the line holds a secret: no traceback (its frames keep the line)
            raise UsageError(f"{type(exc).__name__}: {redact(exc.message)}") from None
        except OAuth2Error as exc:
            if self.show_traceback or error_display.installed(self.shell):
                raise  # shown short by error_display, the full traceback on %tb (or shown in full)
            raise UsageError(f"{type(exc).__name__}: {redact(exc.message)}") from None

    def _dispatch(self, line: str, cell: str | None) -> Any:
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%oauth2: cannot parse the line ({exc}).") from None
        refuse_secrets(argv)
        if not argv:
            print(full_help())
            return None
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except _ParseError as exc:
            raise UsageError(scrub_parse_error(exc, argv, parser)) from None
        if cell is not None and args.command not in ("profile", "graphql"):
            raise UsageError("%%oauth2 as a cell magic only supports: %%oauth2 profile NAME (TOML body) and "
                             "%%oauth2 graphql URL (query body).")
        if args.command == "profile":
            return self._profile(args.name, cell)
        if args.command == "graphql":
            return self._graphql(args, cell)
        handler = getattr(self, "_cmd_" + args.command.replace("-", "_"))
        return handler(args)

    # -- sub-commands ----------------------------------------------------------------

    def _cmd_login(self, args: argparse.Namespace) -> None:
        from .frontend import in_notebook
        from .login_ui import login

        if args.key and not args.cert:
            raise UsageError("%oauth2 login: --key needs --cert.")
        options: dict[str, Any] = {k: v for k, v in (("client_id", args.client_id), ("issuer", args.issuer)) if v}
        if args.cert:
            options["cert"] = (args.cert, args.key) if args.key else args.cert
        flow = args.flow or ("device" if args.via == "device" else None)
        scope = split_list(" ".join(args.scope)) if args.scope else None
        if args.no_wait:  # only when asked: login() takes wait= since issue 12
            options["wait"] = False
        session = login(args.profile or self.default_profile, scope=scope, flow=flow, via=args.via,
                        store=args.store or self.default_store or None, name=args.name, browser=BROWSER_HOOK,
                        on_device_code=DEVICE_HOOK, **options)
        if session.is_authorized and not in_notebook():  # in a notebook the widget already says so
            print(signed_in_line(session))
        return None  # never a Session in Out/_ (case 36)

    def _cmd_status(self, args: argparse.Namespace) -> Any:
        """Every session: who signed in (when the provider says), until when (local time), fingerprint."""
        from .tables import status_table
        from ..auth.registry import _state, sessions

        return status_table(sessions(), _state().default)

    def _cmd_refresh(self, args: argparse.Namespace) -> None:
        from ..auth.registry import session

        target = session(args.name)
        token = target.refresh()
        print(f"Refreshed {target.name} ({token.fingerprint}, {token.describe_expiry()}).")

    def _cmd_logout(self, args: argparse.Namespace) -> None:
        import warnings

        from ..auth.registry import login_call, logout, session

        target = session(args.name)
        name, hub = target.name, getattr(target.flow, "grant", None) == "hub"  # signed in by the hub's service
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            confirmed = logout(name, revoke=args.revoke)
        if args.revoke and not confirmed:
            detail = str(caught[-1].message) if caught else "the provider did not confirm the revocation"
            print(f"Logged out of {name}; {redact(detail)}")
        elif hub:
            print(f"Logged out of {name}" + ("; the provider revoked the tokens and every kernel of yours on this hub "
                                             "is signed out." if args.revoke else " in this kernel (your other "
                                             "kernels on this hub stay signed in; --revoke signs them all out)."))
        else:
            print(f"Logged out of {name}" + ("; the provider revoked the tokens." if args.revoke else "."))
        print(f"Sign in again with %oauth2 login, or {login_call(name)}.")

    def _cmd_providers(self, args: argparse.Namespace) -> Any:
        from .tables import providers_table

        return providers_table()

    def _cmd_use(self, args: argparse.Namespace) -> None:
        from ..auth.registry import set_default

        set_default(args.profile)
        print(f"{args.profile} is now the default session.")

    def _cmd_redirect_uri(self, args: argparse.Namespace) -> None:
        from ..core.redirect_advice import redirect_uri_advice

        print("\n".join(redirect_uri_advice()))

    def _cmd_get(self, args: argparse.Namespace) -> Any:
        from .. import api
        from ..frames.readers import DEFAULT_MAX_PAGES

        max_pages = DEFAULT_MAX_PAGES if args.max_pages is None else args.max_pages  # case 56
        return api.read_json(args.url, session=args.session, record_path=args.record_path, max_pages=max_pages,
                                paginate=args.paginate, partial=args.partial, progress=self.progress and not args.no_progress)

    def _graphql(self, args: argparse.Namespace, query: str | None) -> Any:
        user_ns = self.shell.user_ns if self.shell is not None else {}
        return graphql_cell.run(args, query, user_ns=user_ns, progress=self.progress, is_secret=_is_secret_option)

    def _profile(self, name: str, body: str | None) -> None:
        from ..auth.config import check_no_secrets, define_profile

        if body is None:
            raise UsageError("%oauth2 profile is a cell magic: %%oauth2 profile NAME, then TOML lines in the cell.")
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            mapping = tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"%%oauth2 profile {name}: the cell is not valid TOML ({exc}).") from None
        for value in mapping.values():  # nested tables ([client] ...) are checked too
            if isinstance(value, dict):
                check_no_secrets(value, where="cell", profile=name)
        define_profile(name, mapping)
        print(f"Profile {name!r} defined for this kernel ({', '.join(sorted(mapping)) or 'no settings'}).")


def signed_in_line(session: Any) -> str:
    """``Signed in as profile demo (Alice Liddell (alice), until 14:05; sha256:1a2b3c4d).`` (no token)."""
    from ..auth.identity import who
    from .login_text import until

    status = session.status()
    user = who(session)
    return (f"Signed in as profile {session.name} ({f'{user}, ' if user else ''}{until(status['expires_in'])}; "
            f"{status['fingerprint']}).")


OAuth2Magics.oauth2.__doc__ = "%oauth2 COMMAND [options]\n\n" + full_help()


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and make ``%config OAuth2Magics`` work."""
    magics = OAuth2Magics(shell=ipython, config=ipython.config)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)
