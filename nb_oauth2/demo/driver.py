"""A test driver that plays the browser's part of a login over plain HTTP.

Used by the project's tests, the headless demo and the tutorials: it loads the
login page, posts the form, approves or denies consent, and hands back the
redirect URL (never following it) -- what a person would paste back.
"""

from __future__ import annotations

import re
from typing import Mapping, Protocol
from urllib.parse import urljoin

import requests

from ..core.errors import OAuth2Error
from ..core.redact import redact_url

__all__ = ["Driver", "DriverError"]

_TIMEOUT = 10.0
_REDIRECTS = (301, 302, 303, 307, 308)


class DriverError(OAuth2Error):
    """The demo driver could not complete the browser's part (bad page, wrong password)."""


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    if not match:
        raise DriverError(f"The demo page has no {name!r} field.")
    return match.group(1).replace("&amp;", "&")


def _resolve(page_url: str, location: str) -> str:
    """Where a browser on ``page_url`` goes for ``location`` (behind the hub's proxy it is relative)."""
    if location.startswith(("http://", "https://", "/")):
        return location
    return urljoin(page_url, location)


class DemoPages(Protocol):
    """What the driver needs of a running demo provider (:class:`.server.DemoProvider`)."""

    url: str
    browser_url: str
    users: Mapping[str, str]


class Driver:
    """Drives the demo provider's login, consent and device pages."""

    def __init__(self, provider: DemoPages) -> None:
        self._provider = provider

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # loopback only: never through a proxy from the environment
        session.verify = getattr(self._provider, "ca_path", None) or True  # the demo's HTTPS mode
        return session

    def _internal(self, url: str) -> str:
        """Map a browser-facing URL (maybe behind jupyter-server-proxy) to the kernel-facing one."""
        p = self._provider
        if p.browser_url != p.url and url.startswith(p.browser_url):
            return p.url + url[len(p.browser_url):]
        return url

    def authorize(self, authorization_url: str, *, username: str = "alice", password: str | None = None,
                  approve: bool = True) -> str:
        """Sign in and approve (or deny); return the final redirect URL without following it."""
        if password is None:
            password = self._provider.users.get(username, "")
        url = self._internal(authorization_url)
        with self._session() as session:
            page = session.get(url, allow_redirects=False, timeout=_TIMEOUT)
            if page.status_code in _REDIRECTS:  # an error redirect straight away
                return _resolve(authorization_url, page.headers["Location"])
            if page.status_code != 200:
                raise DriverError(f"The authorization page answered HTTP {page.status_code} for "
                                  f"{redact_url(url)}.", status=page.status_code)
            target = urljoin(page.url, "authorize")
            form_id = _hidden(page.text, "form_id")
            login = session.post(target, data={"form_id": form_id, "step": "login", "username": username,
                                               "password": password}, allow_redirects=False, timeout=_TIMEOUT)
            if login.status_code != 200:
                raise DriverError(f"Signing in as {username!r} failed (HTTP {login.status_code}).",
                                  status=login.status_code)
            decision = {"form_id": _hidden(login.text, "form_id"), "step": "consent",
                        "decision": "approve" if approve else "deny"}
            final = session.post(target, data=decision, allow_redirects=False, timeout=_TIMEOUT)
            if final.status_code not in _REDIRECTS:
                raise DriverError(f"The consent page answered HTTP {final.status_code}, not a redirect.",
                                  status=final.status_code)
            return _resolve(authorization_url, final.headers["Location"])

    def approve_device(self, user_code: str, *, username: str = "alice", password: str | None = None,
                       approve: bool = True) -> None:
        """Enter ``user_code`` on the verification page, sign in, approve (or deny)."""
        if password is None:
            password = self._provider.users.get(username, "")
        target = f"{self._provider.url}/device"
        with self._session() as session:
            login = session.post(target, data={"step": "login", "user_code": user_code, "username": username,
                                               "password": password}, timeout=_TIMEOUT)
            if login.status_code != 200:
                raise DriverError(f"The device page refused the code or the sign-in (HTTP {login.status_code}).",
                                  status=login.status_code)
            decision = {"form_id": _hidden(login.text, "form_id"), "step": "consent",
                        "decision": "approve" if approve else "deny"}
            done = session.post(target, data=decision, timeout=_TIMEOUT)
            if done.status_code != 200:
                raise DriverError(f"The device consent page answered HTTP {done.status_code}.",
                                  status=done.status_code)
