"""Rate limits: the headers read (GitHub, IETF draft), the quota in the progress bar, and a read that
slows down before a 429 instead of running into it.

The servers run on 127.0.0.1 with a fake clock shared with the Fetcher (injected ``sleep``/``clock``):
their quota windows turn when the client sleeps, so nothing here waits or looks at wall time.
"""

from __future__ import annotations

import functools
import json
import threading

import pytest
import requests

import nb_oauth2 as oa
from nb_oauth2.core.errors import RateLimited
from nb_oauth2.frames import page_stream
from nb_oauth2.frames.fetch import Fetcher
from nb_oauth2.frames.progress import ProgressBar
from nb_oauth2.frames.rate_limits import RateBudget, RateLimit, parse_rate_limit, seconds_until_reset
from tests.scripted_server import Reply, Seen

EPOCH = 1_800_000_000.0


class FakeClock:
    """Epoch seconds that move only when someone sleeps. Threads sleep side by side, as real ones do: a
    sleep of ``s`` moves the clock to ``s`` after the time that thread last read (if not there already)."""

    def __init__(self, start: float = EPOCH) -> None:
        self.t = start
        self.lock = threading.Lock()
        self.slept: list[float] = []
        self.read = threading.local()

    def time(self) -> float:
        with self.lock:
            self.read.t = self.t
            return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.t = max(self.t, getattr(self.read, "t", self.t) + seconds)
            self.read.t = self.t
            self.slept.append(seconds)


class QuotaAPI:
    """``/items?page=N`` (Link next/last) with ``quota`` requests per ``window`` s of the fake clock; counts
    the remaining quota down in ``style``'s headers and answers 429 (Retry-After) when it is spent."""

    def __init__(self, server, clock: FakeClock, *, pages: int = 60, quota: int = 20, window: float = 100,
                 style: str = "github") -> None:
        self.server, self.clock = server, clock
        self.pages, self.quota, self.window, self.style = pages, quota, window, style
        self.lock = threading.Lock()
        self.used: dict[int, int] = {}
        self.statuses: list[int] = []
        self.arrivals: list[float] = []
        server.script("/items", [self.reply])

    @property
    def url(self) -> str:
        return f"{self.server.url}/items?page=1"

    def _headers(self, remaining: int, reset_at: float) -> dict[str, str]:
        reset_in = max(0, round(reset_at - self.clock.time()))
        if self.style == "github":
            return {"X-RateLimit-Limit": str(self.quota), "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(int(reset_at)), "X-RateLimit-Resource": "core"}
        if self.style == "ietf":
            return {"RateLimit-Policy": f'"default";q={self.quota};w={int(self.window)}',
                    "RateLimit": f'"default";r={remaining};t={reset_in}'}
        return {"RateLimit-Limit": str(self.quota), "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(reset_in)}

    def reply(self, seen: Seen) -> Reply:
        now = self.clock.time()
        index = int((now - EPOCH) // self.window)
        reset_at = EPOCH + (index + 1) * self.window
        with self.lock:
            self.arrivals.append(now)
            used = self.used.get(index, 0)
            if used >= self.quota:
                self.statuses.append(429)
                return Reply(429, {"message": "API rate limit exceeded"},
                             {**self._headers(0, reset_at), "Retry-After": str(int(reset_at - now) + 1)})
            self.used[index] = used + 1
            self.statuses.append(200)
        page = int(seen.query.get("page", "1"))
        headers = self._headers(self.quota - used - 1, reset_at)
        if page < self.pages:
            headers["Link"] = (f'<{self.server.url}/items?page={page + 1}>; rel="next", '
                               f'<{self.server.url}/items?page={self.pages}>; rel="last"')
        headers["Content-Type"] = "application/json"
        return Reply(200, json.dumps([{"page": page, "i": i} for i in range(2)]).encode(), headers)


def test_github_headers():
    reading = parse_rate_limit({"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4990",
                                "X-RateLimit-Reset": str(int(EPOCH + 120))}, now=EPOCH)
    assert reading == RateLimit(4990, 5000, 120.0)
    assert reading.describe() == "4990/5000 left, resets in 120 s"


def test_ietf_structured_fields_take_the_most_constraining_policy():
    headers = {"RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400',
               "RateLimit": '"burst";r=50;t=30, "daily";r=12;t=3600'}
    assert parse_rate_limit(headers, now=EPOCH) == RateLimit(12, 1000, 3600.0)
    assert parse_rate_limit({"RateLimit": '"default";r=50;t=30'}, now=EPOCH) == RateLimit(50, None, 30.0)
    assert seconds_until_reset({"RateLimit": '"default";r=0;t=7'}, now=EPOCH) == 7.0


def test_draft_dictionary_and_older_triple():
    assert parse_rate_limit({"RateLimit": "limit=100, remaining=50, reset=30"}, now=EPOCH) == RateLimit(50, 100, 30.0)
    triple = {"RateLimit-Limit": "10", "RateLimit-Remaining": "3", "RateLimit-Reset": "9"}
    assert parse_rate_limit(triple, now=EPOCH) == RateLimit(3, 10, 9.0)


@pytest.mark.parametrize("headers", [{}, {"X-RateLimit-Remaining": "many"}, {"RateLimit": '"x";q=5'},
                                     {"RateLimit": "garbage;;,"}, {"X-RateLimit-Remaining": "-3"}])
def test_unreadable_headers_tell_nothing(headers):
    assert parse_rate_limit(headers, now=EPOCH) is None


def test_budget_holds_back_a_spent_quota_until_the_reset_and_ignores_ended_windows():
    clock = FakeClock()
    budget = RateBudget(clock.time)
    budget.observe({"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": str(int(EPOCH + 50))})
    assert budget.acquire() == (0.0, "")
    budget.observe({"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(EPOCH + 50))})
    wait, why = budget.acquire()
    assert wait == pytest.approx(51.0) and "rate limit spent (0/3 left, resets in 50 s)" in why
    budget.observe({"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(EPOCH - 5))})
    assert budget.remaining == 2  # a late answer from an ended window changes nothing


def test_requests_in_flight_at_the_reset_count_against_the_new_window():
    clock = FakeClock()
    budget = RateBudget(clock.time)
    budget.observe({"RateLimit": '"default";r=3;t=10', "RateLimit-Policy": '"default";q=5;w=10'})
    assert [budget.acquire()[0] for _ in range(3)] == [0.0, 0.0, 0.0]  # three sent, no answer yet
    wait, _ = budget.acquire()
    assert wait == pytest.approx(11.0)
    assert budget.remaining == 1  # 5 in the new window, less the 3 that may still land there, less this one


def test_an_answer_from_the_next_window_is_taken_less_the_requests_in_flight():
    clock = FakeClock()
    budget = RateBudget(clock.time)
    gh = lambda remaining, reset: {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": str(remaining),  # noqa: E731
                                   "X-RateLimit-Reset": str(int(EPOCH + reset))}
    budget.observe(gh(2, 60))
    assert [budget.acquire()[0] for _ in range(2)] == [0.0, 0.0]  # both sent; the quota is spent
    clock.sleep(61)
    budget.observe(gh(9, 120))  # one landed after the reset: the next window; the other is still in flight
    assert (budget.remaining, budget.reset_at) == (8, EPOCH + 120)
    budget.observe(gh(0, 60))  # the other one, answered in the window before: ignored
    assert budget.remaining == 8


def test_a_reset_told_as_a_delay_may_drift_without_opening_a_new_window():
    clock = FakeClock()
    budget = RateBudget(clock.time)
    budget.observe({"RateLimit": '"default";r=5;t=60'})
    budget.acquire()
    clock.sleep(3)
    budget.observe({"RateLimit": '"default";r=4;t=59'})  # answered 3 s late: its reset looks 2 s later
    assert budget.remaining == 4


def test_budget_paces_when_fewer_requests_remain_than_pages():
    clock = FakeClock()
    budget = RateBudget(clock.time)
    budget.observe({"RateLimit": '"default";r=10;t=100', "RateLimit-Policy": '"default";q=10;w=100'})
    assert budget.acquire(pages_left=5) == (0.0, "")  # enough quota: full speed
    waits = [budget.acquire(pages_left=50)[0] for _ in range(3)]
    assert waits[0] == 0.0 and waits[1] == pytest.approx(100 / 9) and waits[2] > waits[1]


def test_no_pacing_towards_a_reset_beyond_max_wait():
    """Pacing to a reset the read may not wait for would only delay the RateLimited it ends in."""
    budget = RateBudget(FakeClock().time)
    budget.observe({"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "40",
                    "X-RateLimit-Reset": str(int(EPOCH + 3000))})
    assert [budget.acquire(pages_left=500, max_wait=60)[0] for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.acquire(pages_left=500, max_wait=3600)[0] == 0.0
    assert budget.acquire(pages_left=500, max_wait=3600)[0] > 60


@pytest.mark.parametrize("style", ["github", "ietf", "triple"])
def test_read_json_on_four_threads_never_gets_a_429(scripted, style, monkeypatch):
    """60 pages, 20 requests per 50 s window, four threads sharing one budget: the read finishes without
    a single 429 (it waits out each window instead), and every page is there once."""
    clock = FakeClock()
    api = QuotaAPI(scripted, clock, style=style, window=50)
    monkeypatch.setattr(page_stream, "Fetcher", functools.partial(Fetcher, sleep=clock.sleep, clock=clock.time))
    df = oa.read_json(api.url, session=requests.Session(), progress=False, concurrency=4)
    assert 429 not in api.statuses and len(api.statuses) == 60
    assert sorted(set(df["page"])) == list(range(1, 61)) and len(df) == 120
    assert clock.time() - EPOCH >= 100  # three windows were needed; the fake clock moved that far


def test_bar_shows_the_quota_and_paces_before_the_limit(scripted):
    """The bar (driven from Python) shows "quota 19/20 left, resets in N s"; with 30 pages to read and 20 left,
    the requests are spaced out until the reset, and a spent quota is waited out with the reason shown."""
    clock = FakeClock()
    api = QuotaAPI(scripted, clock, pages=30)
    shown: list[str] = []
    with ProgressBar(True) as bar:
        bar.start(api.url)

        def on_wait(seconds: float, reason: str) -> None:
            bar.wait(seconds, reason)
            shown.append(bar.bar.postfix)

        fetcher = Fetcher(requests.Session(), sleep=clock.sleep, clock=clock.time, on_wait=on_wait,
                          on_rate=bar.rate, pages_left=bar.pages_left, max_wait=120)
        fetcher.get(api.url)
        bar.page(2)
        assert bar.bar.postfix == "rows=2, quota 19/20 left, resets in 100 s"
        bar.total(30)
        for page in range(2, 31):
            fetcher.get(f"{scripted.url}/items?page={page}")
            bar.page(2)
        assert "quota" in str(bar.bar)
    assert 429 not in api.statuses and len(api.statuses) == 30
    first_window = [t - EPOCH for t in api.arrivals if t < EPOCH + 100]
    assert len(first_window) == 20
    gaps = [b - a for a, b in zip(first_window[1:], first_window[2:])]
    assert min(gaps) > 4  # paced: ~100 s / 20 requests apart, not a burst then a wall
    assert any("pacing to the rate limit" in text for text in shown)


def test_a_reset_beyond_max_wait_raises_before_sending(scripted):
    clock = FakeClock()
    api = QuotaAPI(scripted, clock, quota=1, window=1000)
    fetcher = Fetcher(requests.Session(), sleep=clock.sleep, clock=clock.time, max_wait=60)
    fetcher.get(api.url)
    with pytest.raises(RateLimited, match="max_wait=60"):
        fetcher.get(f"{scripted.url}/items?page=2")
    assert api.statuses == [200]


def test_read_json_bar_shows_the_quota(scripted, monkeypatch):
    """Through read_json: the bar's text carries the quota after the last page."""
    import tqdm
    import tqdm.auto

    clock = FakeClock()
    api = QuotaAPI(scripted, clock, pages=5, quota=50, window=50)
    bars: list = []

    class Kept(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Kept)
    monkeypatch.setattr(page_stream, "Fetcher", functools.partial(Fetcher, sleep=clock.sleep, clock=clock.time))
    oa.read_json(api.url, session=requests.Session(), progress=True, concurrency=1)
    assert bars and bars[0].postfix == "rows=10, quota 45/50 left, resets in 50 s"
