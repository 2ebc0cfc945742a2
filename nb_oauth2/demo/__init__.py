"""The embedded demo OAuth 2 provider: a real authorization server and a paginated
JSON API on loopback, for tutorials, Binder and tests.

    from nb_oauth2 import demo
    with demo.start() as p:
        p.url, p.clients["public"].client_id, p.users

Built on oauthlib's server endpoints. Endpoints under ``p.url``: ``/authorize``
(login + consent pages), ``/token``, ``/revoke`` (RFC 7009), ``/introspect``
(RFC 7662), ``/device_authorization`` and ``/device`` (RFC 8628), ``/userinfo``,
``/callback`` (paste-back page), ``/.well-known/oauth-authorization-server`` and
``/.well-known/openid-configuration`` (RFC 8414), and the API under ``/api/``.

Browser-facing URLs (``p.browser_url``, ``p.callback_url``): equal to ``p.url``,
or ``public_url`` when given, or under JupyterHub/Binder (``JUPYTERHUB_SERVICE_PREFIX``
set) the *path* ``{prefix}proxy/{port}`` served by jupyter-server-proxy. A path is
not an absolute URL: clients should then omit ``redirect_uri`` (the registered
default, ``callback_url``, is used) or send its absolute form on the hub's host,
which is accepted too. Every client also accepts any loopback redirect URI
(``http://127.0.0.1:<port>/<path>``, ``[::1]``, ``localhost``; RFC 8252 7.3).

``demo.start(https=True)`` serves over TLS with a throwaway CA (``p.ca_path`` for
``verify=``); ``mtls=True`` adds RFC 8705 mutual TLS: endpoint aliases on a second
port (``p.mtls_url``, metadata ``mtls_endpoint_aliases``), the clients ``tls``
(``tls_client_auth``, ``p.client_cert``) and ``self_signed_tls``
(``self_signed_tls_client_auth``, ``p.self_signed_cert``), and certificate-bound
access tokens (``cnf``) that the API refuses without their certificate.
"""

from __future__ import annotations

from .serve import main
from .server import DEMO_USERS, DemoProvider, start
from .clients import DEMO_SCOPES, DemoClient

__all__ = ["DEMO_SCOPES", "DEMO_USERS", "DemoClient", "DemoProvider", "main", "start"]
