"""nb_oauth2 from a plain script (no Jupyter): discover, sign in with every grant, survive expiry, revoke.

Runs against the embedded demo provider; the demo's driver plays the user's browser.

    python examples/plain_script.py
"""

from __future__ import annotations

import sys
import threading

import nb_oauth2 as oa
from nb_oauth2 import demo


def main() -> int:
    with demo.start(device_interval=1) as provider:
        clients = provider.clients
        found = oa.discover(provider.issuer)
        print(f"discovered {found.issuer}: token endpoint {found.token_endpoint}")

        web = oa.login("web", issuer=provider.issuer, client_id=clients["public"].client_id,
                       browser=provider.driver.authorize)
        svc = oa.login("svc", issuer=provider.issuer, client_id=clients["service"].client_id,
                       client_secret=clients["service"].client_secret, flow="client_credentials")
        dev = oa.login("dev", issuer=provider.issuer, client_id=clients["device"].client_id, flow="device",
                       on_device_code=lambda step: threading.Timer(
                           0.2, provider.driver.approve_device, args=(step.user_code,)).start())
        for session in (web, svc, dev):
            print(f"{session.name}: {session.status()['grant']}, {session.token_info!r}")

        provider.expire_access_tokens()  # a forced expiry: the next call refreshes once
        before = provider.token_requests
        answer = web.get(provider.url + "/userinfo")
        print(f"after forced expiry: HTTP {answer.status_code}, {provider.token_requests - before} token request")

        frame = oa.read_json(provider.url + "/api/events", session=web, progress=False)
        print(f"read_json: {frame.shape[0]} rows x {frame.shape[1]} columns")

        print(f"revoked: {web.revoke()}")
        try:
            web.get(provider.url + "/userinfo")
        except oa.ReauthRequired as exc:
            print(f"after revocation: {type(exc).__name__}: {exc}")
        try:
            oa.login("bad", issuer=provider.issuer, client_id="no-such-client", flow="client_credentials",
                     client_secret="wrong-secret-123")
        except oa.OAuth2Error as exc:
            print(f"bad client: {type(exc).__name__}: {exc}")
    return 0 if "IPython" not in sys.modules else 1


if __name__ == "__main__":
    sys.exit(main())
