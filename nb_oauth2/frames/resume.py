"""Resume state of an interrupted :func:`~nb_oauth2.frames.readers.to_parquet` pull (``resume=True``).

Beside the target ``out.parquet`` live ``.out.parquet.parts/`` (part files already written) and
``.out.parquet.resume.json``: the start URL, the URL of the page after the last page in those parts,
the rows written and the writer's running schema facts. Never a token: a URL that carries a secret
registered with :mod:`nb_oauth2.core.redact`, a password in its userinfo or a credential parameter
(``access_token=``, ``api_key=`` ...) is refused with :class:`~nb_oauth2.core.errors.SecretInResumeState`,
and the saved next URL must stay on the start URL's origin (a state file edited to point elsewhere never
gets the token). Both errors live in :mod:`nb_oauth2.core.errors`, beside the other ConfigurationErrors.

A checkpoint is a closed part file renamed into the folder, then the JSON replaced atomically; a part
not named in the JSON (a crash between the two) is deleted on resume. :meth:`Journal.atomic` defers
Ctrl-C (the notebook's Stop button) while a page is added and a checkpoint is written, so a page is
either wholly in the saved parts or fetched again, never both.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import threading
from typing import Any, Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

from ..core.errors import ConfigurationError, ResumeMismatch, SecretInResumeState, UnsafeNextLink
from ..core.redact import redact, redact_url
from .next_links import check_next_url
from .pagination import PageInfo, Paginator, make_paginator

__all__ = ["Journal", "NextLinks", "check_storable", "STATE_VERSION"]

STATE_VERSION = 1

#: parameters whose value is a credential, registered or not (a cursor such as ``pageToken=`` is not)
_CREDENTIAL_PARAMS = frozenset({"access_token", "refresh_token", "id_token", "client_secret", "code_verifier",
                                "client_assertion", "password", "passwd", "api_key", "apikey", "x_amz_signature",
                                "x_amz_security_token", "x_amz_credential", "x_goog_signature", "x_goog_credential"})


def check_storable(url: str) -> str:
    """``url`` if it may be written to a resume state file, else :class:`SecretInResumeState`."""
    parts = urlsplit(url)
    pieces = [parts.netloc, parts.path] + [p for pair in parse_qsl(parts.query, keep_blank_values=True) for p in pair]
    names = {k.strip().lower().replace("-", "_") for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    secret = (parts.password is not None or bool(names & _CREDENTIAL_PARAMS)
              or any(redact(p) != p or redact(unquote(p)) != unquote(p) for p in pieces if p))
    if secret:
        raise SecretInResumeState(
            f"resume=True would save {redact_url(url)} beside the data, and it carries a token or another secret; "
            "nothing was saved. Send credentials in headers (the session does), or pull without resume=True.")
    return url


class NextLinks:
    """The next URL after each page, as the walk decides it: a copy of the walk's paginator, shown every page."""

    def __init__(self, paginate: str | Paginator, start_url: str) -> None:
        paginator = make_paginator(paginate)
        try:
            paginator = copy.deepcopy(paginator)  # the walk's own instance keeps its state to itself
        except Exception:  # a custom paginator that cannot be copied: shown the same pages, it answers the same
            pass
        self.paginator, self.start_url = paginator, start_url

    def after(self, info: PageInfo) -> str | None:
        """The checked URL of the page after ``info`` (None: ``info`` was the last page)."""
        try:
            nxt = self.paginator.next_url(info)
        except ValueError:
            return None  # the walk stops with its own error on this page
        return check_storable(check_next_url(self.start_url, nxt)) if nxt else None


def _options_key(options: dict[str, Any]) -> str:
    """The options that shape the rows, as text (a Paginator instance by its class: its repr has an address)."""
    return json.dumps(options, sort_keys=True, default=lambda value: type(value).__qualname__)


class Journal:
    """The resume state of one target: where parts go, what they hold, and where the walk goes on."""

    def __init__(self, path: str, start_url: str, options: dict[str, Any]) -> None:
        target = os.path.abspath(path)
        parent, name = os.path.split(target)
        self.target, self.start_url = target, check_storable(start_url)
        self.folder = os.path.join(parent, f".{name}.parts")
        self.state_file = os.path.join(parent, f".{name}.resume.json")
        self.options = _options_key(options)
        self.state: dict[str, Any] = {}

    # -- reading -------------------------------------------------------------------------------

    def load(self) -> dict[str, Any] | None:
        """The saved state of this pull (None: none saved, start afresh); :class:`ResumeMismatch` when the
        target's state belongs to another start URL or other options."""
        try:
            with open(self.state_file, encoding="utf-8") as fh:
                state = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            state = None
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ResumeMismatch(f"The resume state {self.state_file} cannot be read; delete it (and {self.folder}) "
                                 "to start the pull over.")
        if state.get("start_url") != self.start_url or state.get("options") != self.options:
            what = "start URL" if state.get("start_url") != self.start_url else "options (record_path, sep, ...)"
            raise ResumeMismatch(
                f"{self.target} has a saved pull with another {what} ({redact_url(str(state.get('start_url')))}); "
                "resuming would mix two pulls in one file. Resume with the same arguments, write to another path, "
                f"or delete {self.state_file} and {self.folder} to start over.")
        nxt = state.get("next_url")
        if nxt is not None:
            try:
                check_storable(check_next_url(self.start_url, nxt))
            except (UnsafeNextLink, ConfigurationError):
                raise ResumeMismatch(f"The saved next URL in {self.state_file} leaves the start URL's origin or "
                                     "carries a secret; it was not followed.") from None
        if any(not os.path.isfile(os.path.join(self.folder, p)) for p in state.get("parts", [])):
            return None  # parts gone (the file was being finished): start over rather than lose rows
        self.state = state
        return state

    def start(self) -> dict[str, Any]:
        """Prepare the parts folder: keep the saved parts, delete anything else (a crash's half-written part)."""
        os.makedirs(self.folder, exist_ok=True)
        keep = set(self.state.get("parts", []))
        for name in os.listdir(self.folder):
            if name not in keep:  # a half-written part, or a partitioned pull's half-written dataset folder
                place = os.path.join(self.folder, name)
                shutil.rmtree(place) if os.path.isdir(place) and not os.path.islink(place) else os.remove(place)
        return self.state

    # -- writing -------------------------------------------------------------------------------

    def commit(self, **facts: Any) -> None:
        """Save the state (atomically): ``parts``, ``rows``, ``next_url`` (None: every page is in the parts)
        and the writer's facts (``filled``, ``mixed``, ``order``)."""
        if facts.get("next_url") is not None:
            check_storable(facts["next_url"])
        self.state = {**self.state, **facts, "version": STATE_VERSION, "start_url": self.start_url,
                      "options": self.options, "target": self.target}
        staged = self.state_file + ".tmp"
        with open(staged, "w", encoding="utf-8") as fh:
            json.dump(self.state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(staged, self.state_file)

    def clear(self) -> None:
        """The pull is complete: forget its state and parts."""
        for name in (self.state_file, self.state_file + ".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)
        shutil.rmtree(self.folder, ignore_errors=True)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Run the block with Ctrl-C deferred to its end (main thread only; elsewhere signals cannot arrive)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        caught: list = []
        try:
            previous = signal.signal(signal.SIGINT, lambda *args: caught.append(args))
        except ValueError:  # not the main interpreter
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(*caught[0])  # Python's (or the kernel's) handler: raises KeyboardInterrupt
            elif previous != signal.SIG_IGN:
                raise KeyboardInterrupt
