"""The stop rules of a walk through pages, as pure decisions (no I/O, no threads).

:class:`WalkRules` is told each page as it arrives (:meth:`~WalkRules.count`) and answers what to
request next: the checked next URL (:meth:`~WalkRules.next_url`), or the checked plan of every
remaining URL to fetch concurrently (:meth:`~WalkRules.planned_urls`). It stops the walk with a
:class:`~nb_oauth2.core.errors.PaginationError` on a loop (the same request twice, whatever the
order of its query parameters), at ``max_pages``, after ``max_empty_pages`` empty pages in a row
that still link onwards (case 56), on a malformed next link (case 58, naming the field it came
from) and when a page says there is more but the paginator cannot follow it (case 62).
:func:`~nb_oauth2.frames.next_links.check_next_url` refuses links to another origin.
:func:`nb_oauth2.frames.walk.follow` is the driver that fetches what these rules decide.
"""

from __future__ import annotations

from ..core.errors import PaginationError
from ..core.redact import redact_url
from .next_links import check_link_syntax, check_next_url, seen_key, shown_url
from .pagination import PageInfo, Paginator

__all__ = ["WalkRules", "MAX_EMPTY_PAGES", "page_cap_error"]

#: consecutive empty pages after which a walk that still gets a next link stops (case 56)
MAX_EMPTY_PAGES = 3
#: pages read at most unless ``max_pages=`` says otherwise (None: no cap; case 56). For everyone, not only in
#: notebooks: an API that never stops hangs a script or a scheduled job as surely as a kernel, and the
#: same call should behave the same in both. 10,000 pages is 1,000,000 rows at 100 a page.
DEFAULT_MAX_PAGES = 10_000


def page_cap_error(max_pages: int, total: int | None = None) -> PaginationError:
    """The error of a walk stopped at ``max_pages`` (``total``: the page count, when the API told it)."""
    has = f"The API has {total:,} pages, more than" if total else "Stopped at"
    return PaginationError(
        f"{has} max_pages={max_pages:,} with more pages left (a cap that keeps an API that never stops from "
        f"running forever). Pass a larger max_pages= (e.g. max_pages={max_pages * 10:_}) or max_pages=None for "
        "no cap, or partial=True to keep the pages read so far.")


class WalkRules:
    """One walk's state (pages read, empty pages in a row, requests made) and its stop rules."""

    def __init__(self, start_url: str, paginator: Paginator, *, max_pages: int | None = None,
                 max_empty_pages: int | None = MAX_EMPTY_PAGES) -> None:
        self.start_url = start_url
        self.paginator = paginator
        self.max_pages = max_pages
        self.max_empty_pages = max_empty_pages
        self.pages = 0
        self.empty_in_a_row = 0
        self._requested = {seen_key(start_url)}
        self._plan_declined = False

    def count(self, info: PageInfo) -> None:
        """One more page has arrived."""
        self.pages += 1
        self.empty_in_a_row = self.empty_in_a_row + 1 if info.n_records == 0 else 0

    def where(self) -> str:
        """The field the paginator's last next link came from (for messages)."""
        return getattr(self.paginator, "field", None) or f"{self.paginator.name} paginator"

    def next_url(self, info: PageInfo) -> str | None:
        """The checked URL after the page ``info``, None when the walk is complete; PaginationError
        on a loop, too many empty pages in a row, ``max_pages``, or a link the paginator cannot follow."""
        nxt = self._next_link(info)
        if nxt is None:
            return None
        if seen_key(nxt) in self._requested:
            raise PaginationError(f"The API sent the same next link or cursor twice ({redact_url(nxt)}, from "
                                  f"{self.where()!r}); stopped to avoid a loop. Pass partial=True to keep what "
                                  "was read.", url=shown_url(nxt))
        if self.max_empty_pages is not None and self.empty_in_a_row >= self.max_empty_pages:
            raise PaginationError(
                f"The API sent {self.empty_in_a_row} empty pages in a row and still a next page ({self.where()!r}); "
                "stopped as it may never end. Pass a larger max_empty_pages= if the API really skips through empty "
                "pages, or partial=True to keep the rows read so far.", url=shown_url(nxt))
        if self.max_pages is not None and self.pages >= self.max_pages:
            raise page_cap_error(self.max_pages)
        return nxt

    def claim(self, url: str) -> None:
        """``url`` is about to be requested (a later link back to it is a loop)."""
        self._requested.add(seen_key(url))

    def planned_urls(self, info: PageInfo, nxt: str) -> list[str] | None:
        """Every remaining URL, checked and claimed, when the paginator can plan them from ``info`` and
        the first is ``nxt`` (whatever the order of its query parameters; ``nxt`` is requested as the API
        sent it); None to follow ``nxt`` alone. A plan declined once is not built again on later pages."""
        if self._plan_declined:
            return None
        plan = self.paginator.plan(info, nxt)
        if not plan:
            return None
        keys = [seen_key(url) for url in plan]
        if keys[0] != seen_key(nxt) or not self._requested.isdisjoint(keys):
            self._plan_declined = True  # it would be declined again on every page (a quadratic walk)
            return None
        where = self.where()
        plan = [nxt] + [check_next_url(self.start_url, check_link_syntax(url, where)) for url in plan[1:]]
        self._requested.update(keys)
        return plan

    def page_total(self, info: PageInfo, nxt: str | None) -> int | None:
        """How many pages page 1 (``info``) says there are, for the progress bar; None when it does not say
        or cannot be read (a count is never a reason to fail a read)."""
        try:
            total = self.paginator.total_pages(info, nxt)
        except Exception:  # a custom paginator's or a malformed rel="last" link's problem, not the reader's
            return None
        return total if isinstance(total, int) and total >= self.pages else None

    def room(self, planned: int) -> int:
        """How many of ``planned`` more pages ``max_pages`` leaves room for."""
        return planned if self.max_pages is None else min(planned, self.max_pages - self.pages)

    def _next_link(self, info: PageInfo) -> str | None:
        """The checked next URL, None when the walk is complete; PaginationError when it is not but the
        paginator cannot go on (case 62) or the link is malformed (case 58)."""
        paginator, pages, url = self.paginator, self.pages, self.start_url
        try:
            nxt = paginator.next_url(info)
        except ValueError:  # a custom paginator's urljoin/urlsplit on a malformed link
            raise PaginationError(f"The {paginator.name!r} paginator could not read the next-page link of page "
                                  f"{pages} (a malformed URL); it was not followed.", url=shown_url(url)) from None
        if not nxt:
            signal = paginator.pending(info)
            if signal:
                raise PaginationError(
                    f"Page {pages} of {shown_url(url)} says there is more ({signal!r}) but paginate={paginator.name!r} "
                    "cannot follow it, so the result would be silently short. Use paginate='auto', or name the "
                    "cursor: paginate=CursorPaginator(field='<field holding the cursor>', param='<query parameter>'); "
                    "paginate='none' reads one page on purpose. Pass partial=True to keep the rows read so far.",
                    url=shown_url(url))
            return None
        where = self.where()
        check_link_syntax(nxt, where)
        try:
            return check_next_url(url, nxt)
        except ValueError:  # a link only urllib cannot parse: still not followed, and typed
            raise PaginationError(f"The next-page link in {where!r} ({shown_url(nxt)}) cannot be parsed; it was not "
                                  "followed.", url=shown_url(nxt)) from None
