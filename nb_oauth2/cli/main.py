"""``nb-oauth2``: the demo, the provider presets, and the redirect URI to register."""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import Sequence

from .notebooks import notebooks_dir

__all__ = ["main", "build_parser"]

#: ``--help``'s description (argparse prints it as it is: no reST markup)
DESCRIPTION = "nb-oauth2: the demo, the provider presets, and the redirect URI to register."


def _cmd_providers(_: argparse.Namespace) -> int:
    from ..core.providers import PRESETS, preset

    for name in PRESETS:
        provider = preset(name)
        print(f"{name:10} {provider.authorization_endpoint or '-'}")
    print("demo       the embedded demo provider (no account needed)")
    print("any OIDC issuer: nb_oauth2.login('name', issuer='https://...')")
    return 0


def _cmd_redirect_uri(_: argparse.Namespace) -> int:
    from ..core.redirect_advice import redirect_uri_advice

    print("\n".join(redirect_uri_advice()))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.headless:
        from .headless import run_quickstart

        return run_quickstart(records=args.records)
    if args.serve_only:
        from .. import demo

        return demo.main(["--port", str(args.port)])
    return _run_lab(args)


def _run_lab(args: argparse.Namespace) -> int:
    notebooks = notebooks_dir()
    if notebooks is None:
        print("The tutorial notebooks are not installed; run from a checkout of nb_oauth2.", file=sys.stderr)
        return 2
    if shutil.which("jupyter-lab") is None and not _has_module("jupyterlab"):
        print("JupyterLab is not installed: pip install 'nb_oauth2[lab]'", file=sys.stderr)
        return 2
    from .lab import run_lab

    return run_lab(notebooks, ip=args.ip, port=args.port, open_browser=not args.no_browser)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="nb-oauth2", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the quickstart tutorial against the embedded demo provider")
    demo.add_argument("--headless", action="store_true", help="run the quickstart without a browser and print the result")
    demo.add_argument("--serve-only", action="store_true", help="only run the demo provider until Ctrl-C")
    demo.add_argument("--records", type=int, default=5000, help="records in the demo API (headless)")
    demo.add_argument("--ip", default="127.0.0.1", help="JupyterLab's address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=0,
                      help="port (JupyterLab: 8888, or a free one when 8888 is taken; provider: a free one)")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    demo.set_defaults(func=_cmd_demo)
    providers = sub.add_parser("providers", help="list the provider presets")
    providers.set_defaults(func=_cmd_providers)
    redirect = sub.add_parser("redirect-uri", help="the redirect URI to register at a provider")
    redirect.set_defaults(func=_cmd_redirect_uri)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a readable line, not a traceback, for package errors
        from ..core.errors import OAuth2Error
        from ..core.redact import redact

        if isinstance(exc, OAuth2Error):
            print(f"nb-oauth2: {redact(exc)}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
