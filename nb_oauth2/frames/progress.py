"""The progress bar of one read (tqdm): pages and rows, the page total as soon as the API tells it,
the rate-limit quota ("42/5000 left, resets in 120 s") and every wait with its reason."""

from __future__ import annotations

from typing import Any

from ..core.redact import redact_url
from .rate_limits import RateLimit

__all__ = ["ProgressBar"]


class ProgressBar:
    """The tqdm bar of one read, as a context manager: shown from the first request, told the page count
    as soon as the API tells it (``on_total``), left in place when the read completes, and removed when
    it fails, so no stale ``0/?`` bar sits above the error."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.rows = 0
        self.pages = 0
        self.pages_total: int | None = None
        self.quota = ""  # the last rate-limit reading, as shown

    def pages_left(self) -> int | None:
        """Pages still to read (None while the total is unknown): the Fetcher paces to it."""
        return None if self.pages_total is None else max(0, self.pages_total - self.pages)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # GeneratorExit: the caller stopped reading early (iter_pages with a break), not a failure
        self.close(failed=exc_type is not None and not issubclass(exc_type, GeneratorExit))

    def start(self, url: str) -> None:
        """Show the bar, once the first page's URL is known to be well formed."""
        if self.enabled and self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(desc=redact_url(url)[:60], unit="page", leave=True)

    def total(self, pages: int) -> None:
        self.pages_total = pages or self.pages_total
        bar = self.bar
        if bar is None or not pages or pages == bar.total:
            return
        done, started = bar.n, bar.start_t
        bar.reset(total=pages)  # (not bar.total = ...: reset also resizes a notebook bar's widget)
        bar.n, bar.start_t = done, started
        bar.refresh()

    def page(self, rows: int) -> None:
        self.rows += rows
        self.pages += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(self._postfix(), refresh=False)

    def rate(self, reading: RateLimit) -> None:
        """The quota an answer told (Fetcher's ``on_rate``): shown until the next page or reading."""
        self.quota = f"quota {reading.describe()}"
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=False)

    def wait(self, seconds: float, reason: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"rows={self.rows}, {reason}: waiting {seconds:.1f}s")

    def _postfix(self) -> str:
        return f"rows={self.rows}, {self.quota}" if self.quota else f"rows={self.rows}"

    def close(self, failed: bool = False) -> None:
        bar, self.bar = self.bar, None
        if bar is None:
            return
        if failed:
            bar.leave = False
            bar.total = None  # a notebook bar short of its total would otherwise stay, in red
        bar.close()
