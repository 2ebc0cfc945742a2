"""``python -m nb_oauth2.demo`` / ``nb-oauth2 demo``: run the demo provider until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Sequence

from ..core.errors import ConfigurationError
from .server import DemoProvider, start

__all__ = ["describe", "main"]


def describe(provider: DemoProvider, *, secrets: bool = True) -> str:
    """Human-readable summary: URLs, demo users and the pre-registered clients."""
    lines = [
        f"nb_oauth2 demo provider at {provider.url}",
        f"  browser URL:  {provider.browser_url}",
        f"  metadata:     {provider.metadata_url}",
        f"  callback:     {provider.callback_url}",
        "  users:        " + ", ".join(f"{u} / {p}" for u, p in provider.users.items()),
        "  clients:",
    ]
    for name, client in provider.clients.items():
        kind = "public" if client.public else "confidential"
        secret = f"  secret={client.client_secret}" if secrets and client.client_secret else ""
        lines.append(f"    {name:<9} client_id={client.client_id}  ({kind}; {', '.join(client.grant_types)}){secret}")
    if provider.ca_path:
        lines.append(f"  CA bundle:    {provider.ca_path}  (verify=)")
    if provider.mtls_url:
        lines.append(f"  mTLS aliases: {provider.mtls_url}  client cert: {', '.join(provider.client_cert or ())}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nb_oauth2.demo",
                                     description="Run the nb_oauth2 demo OAuth 2 provider on loopback.")
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1, ::1 or localhost (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--records", type=int, default=5000, help="number of demo events")
    parser.add_argument("--seed", type=int, default=0, help="seed of the demo data")
    parser.add_argument("--access-token-ttl", type=int, default=3600, metavar="SECONDS")
    parser.add_argument("--refresh-token-ttl", type=int, default=86400, metavar="SECONDS")
    parser.add_argument("--device-interval", type=int, default=5, metavar="SECONDS")
    parser.add_argument("--no-rotate", action="store_true", help="keep refresh tokens on refresh")
    parser.add_argument("--public-url", default=None, help="browser-facing base URL, if not the local one")
    parser.add_argument("--https", action="store_true", help="serve over TLS with a throwaway CA (needs trustme)")
    parser.add_argument("--mtls", action="store_true", help="also mutual TLS, RFC 8705 (implies --https)")
    parser.add_argument("--hide-secrets", action="store_true", help="do not print client secrets")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the provider, print its URLs and clients, serve until Ctrl-C. Returns an exit code."""
    args = _parser().parse_args(argv)
    try:
        provider = start(host=args.host, port=args.port, records=args.records, seed=args.seed,
                         access_token_ttl=args.access_token_ttl, refresh_token_ttl=args.refresh_token_ttl,
                         device_interval=args.device_interval, rotate_refresh_tokens=not args.no_rotate,
                         public_url=args.public_url, https=args.https, mtls=args.mtls)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(describe(provider, secrets=not args.hide_secrets), flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        provider.stop()
    return 0
