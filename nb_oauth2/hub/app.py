"""``python -m nb_oauth2.hub``: the tornado application JupyterHub runs as a managed service.

JupyterHub gives a managed service its address and prefix (``JUPYTERHUB_SERVICE_URL``,
``JUPYTERHUB_SERVICE_PREFIX``), its API token and OAuth client; the rest comes from
:mod:`nb_oauth2.hub.config`. Without ``NB_OAUTH2_HUB_KEY`` the service refuses to start
(exit status 2, one line that says what to set).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from typing import Any, Sequence
from urllib.parse import urlsplit

from ..core.errors import ConfigurationError
from ..core.redact import RedactingFilter, redact_url
from .config import HubConfig, load_config, pkce_warnings
from .custody import Custody
from .logins import Logins
from .vault import Vault

__all__ = ["Service", "make_app", "main", "DEFAULT_PREFIX"]

log = logging.getLogger("nb_oauth2.hub")
DEFAULT_PREFIX = "/services/nb-oauth2/"


class Service:
    """What every handler shares: configuration, vault, pending logins, token custody, hub auth."""

    def __init__(self, config: HubConfig, *, prefix: str = DEFAULT_PREFIX, hub_auth: Any = None) -> None:
        from jupyterhub.services.auth import HubOAuth

        self.config = config
        for line in pkce_warnings(config):
            log.warning("%s", line)
        self.prefix = "/" + prefix.strip("/") + "/"
        self.vault = Vault(config.state_dir / "vault", config.key)
        if config.forget_on_restart:
            wiped = self.vault.wipe()
            log.info("nb_oauth2.hub: forget_on_restart: %d stored session file(s) removed", wiped)
        self.logins = Logins(ttl=config.login_ttl)
        self.custody = Custody(config, self.vault)
        self.hub_auth = hub_auth or HubOAuth.instance(cache_max_age=60)

    def public_base(self, request: Any = None) -> str:
        """The hub's public origin: configured, else the browser's request as the proxy forwarded it."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        if request is not None:
            return f"{request.protocol}://{request.host}"
        return ""

    def redirect_uri(self, request: Any) -> str:
        """The one redirect URI of the hub: ``https://<hub>/services/nb-oauth2/callback``."""
        return f"{self.public_base(request)}{self.prefix}callback"

    def start_url(self, login_id: str) -> str:
        """The browser link of a login (a path on the hub's origin when the public URL is not configured)."""
        return f"{self.public_base()}{self.prefix}start/{login_id}"


def _log_request(handler: Any) -> None:
    """tornado's access log without query strings' secrets (the callback's code and state)."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING
    logging.getLogger("tornado.access").log(level, "%d %s %s %.1fms", status, handler.request.method,
                                            redact_url(handler.request.uri or ""),
                                            1000.0 * handler.request.request_time())


def make_app(service: Service) -> Any:
    from tornado import web

    from .handlers import handlers

    return web.Application(
        handlers(service.prefix, service),  # type: ignore[arg-type]
        cookie_secret=secrets.token_bytes(32),  # hub-OAuth cookies: a restart asks the hub again, silently
        login_url=service.hub_auth.login_url,
        log_function=_log_request,
        xsrf_cookies=False,  # the API takes tokens only, never cookies; browser pages only GET
    )


#: lines of JupyterHub's service helpers that hold a cookie value or say nothing useful here
_DROPPED = ("Setting new xsrf cookie", "Skipping XSRF check for insecure request")


def _keep(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_DROPPED)


def setup_logging(level: int = logging.INFO) -> None:
    """One stderr handler (JupyterHub collects it) whose filter masks every secret this process knows."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(levelname).1s %(asctime)s nb-oauth2 %(name)s] %(message)s"))
    handler.addFilter(_keep)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # imported with jupyterhub; chatty at INFO


def new_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nb_oauth2.hub",
                                     description="nb_oauth2's JupyterHub service (run by the hub; see README).")
    parser.add_argument("--new-key", action="store_true", help="print a new NB_OAUTH2_HUB_KEY and exit")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG (still redacted)")
    args = parser.parse_args(argv)
    if args.new_key:
        print(new_key())
        return 0
    setup_logging(logging.DEBUG if args.debug else logging.INFO)
    try:
        config = load_config()
        if not os.environ.get("JUPYTERHUB_API_TOKEN"):
            raise ConfigurationError("nb_oauth2.hub runs as a JupyterHub managed service (JUPYTERHUB_API_TOKEN is "
                                     "not set): add it to c.JupyterHub.services, see examples/jupyterhub_config.py.")
        service = Service(config, prefix=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", DEFAULT_PREFIX))
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not config.profiles:
        log.warning("nb_oauth2.hub: no profiles configured (NB_OAUTH2_HUB_CONFIG); kernels cannot sign in")
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    asyncio.run(_serve(service, url.hostname or "127.0.0.1", url.port or 10101))
    return 0


async def _serve(service: Service, host: str, port: int) -> None:
    app = make_app(service)
    app.listen(port, address=host, xheaders=True)
    log.info("nb_oauth2.hub: serving %s on %s:%d (profiles: %s)", service.prefix, host, port,
             ", ".join(sorted(service.config.profiles)) or "none")
    await asyncio.Event().wait()
