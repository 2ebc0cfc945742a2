"""Deterministic, realistic-looking data served by the demo API.

Everything is drawn from ``random.Random(seed)``, so the same seed gives the
same events and users on every machine and every run.
"""

from __future__ import annotations

import datetime as _dt
import random
from typing import Any

__all__ = ["make_users", "make_events", "Dataset"]

_FIRST = ("ada", "alan", "grace", "linus", "guido", "barbara", "ken", "dennis", "margaret",
          "edsger", "donald", "frances", "john", "radia", "tim", "sophie", "katherine", "yukihiro")
_LAST = ("lovelace", "turing", "hopper", "torvalds", "rossum", "liskov", "thompson", "ritchie",
         "hamilton", "dijkstra", "knuth", "allen", "mccarthy", "perlman", "berners", "wilson")
_COUNTRIES = ("GB", "US", "DE", "FR", "NL", "JP", "BR", "IN", "KE", "CA", "AU", "SE")
_EVENT_TYPES = ("PushEvent", "PullRequestEvent", "IssuesEvent", "ReleaseEvent", "ForkEvent",
                "WatchEvent", "PaymentEvent", "RefundEvent")
_CURRENCIES = ("EUR", "USD", "GBP", "JPY")
_TAGS = ("alpha", "beta", "prod", "staging", "urgent", "billing", "ml", "docs", "infra", "ui")
_REPO_WORDS = ("atlas", "comet", "delta", "ember", "fjord", "garnet", "harbor", "iris", "juniper",
               "kepler", "lumen", "meadow", "nova", "orchid", "prism", "quartz")
_NOTES = ("retry scheduled", "manual review", "imported from legacy system", "ok", "see ticket",
          "ünïcödé note ✓", "comma, separated, note")
_EPOCH = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)


def _iso(moment: _dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_users(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` users with unique logins."""
    users = []
    for i in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        login = f"{first}-{last}-{i + 1}"
        users.append({
            "id": 1000 + i,
            "login": login,
            "name": f"{first.title()} {last.title()}",
            "email": f"{login}@example.org" if rng.random() > 0.1 else None,
            "country": rng.choice(_COUNTRIES),
            "created_at": _iso(_EPOCH - _dt.timedelta(days=rng.randint(1, 3000))),
            "followers": int(rng.paretovariate(1.2) * 3),
            "site_admin": rng.random() < 0.03,
        })
    return users


def _repos(rng: random.Random, count: int) -> list[dict[str, Any]]:
    return [
        {"id": 500 + i, "name": f"{rng.choice(_REPO_WORDS)}-{rng.choice(_REPO_WORDS)}-{i}",
         "stars": int(rng.paretovariate(1.1) * 10)}
        for i in range(count)
    ]


def make_events(rng: random.Random, count: int, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``count`` events with nested objects, lists, timestamps, numbers and some nulls."""
    repos = _repos(rng, 40)
    moment = _EPOCH
    events = []
    for i in range(count):
        moment += _dt.timedelta(seconds=rng.randint(1, 3600))
        actor = rng.choice(users)
        kind = rng.choice(_EVENT_TYPES)
        events.append({
            "id": i + 1,
            "type": kind,
            "created_at": _iso(moment),
            "amount": round(rng.uniform(-50, 5000), 2) if kind != "WatchEvent" else None,
            "currency": rng.choice(_CURRENCIES),
            "tags": rng.sample(_TAGS, rng.randint(0, 3)),
            "actor": {"id": actor["id"], "login": actor["login"],
                      "country": actor["country"] if rng.random() > 0.05 else None},
            "repo": dict(rng.choice(repos)),
            "payload": {"size": rng.randint(0, 250), "ok": rng.random() > 0.1,
                        "note": rng.choice(_NOTES) if rng.random() < 0.3 else None},
        })
    return events


class Dataset:
    """The events and users of one demo provider (built once, on first use)."""

    def __init__(self, *, records: int, seed: int, users: int = 300) -> None:
        rng = random.Random(seed)
        self.users = make_users(rng, users)
        self.events = make_events(rng, records, self.users)
        self.by_login = {u["login"]: u for u in self.users}
