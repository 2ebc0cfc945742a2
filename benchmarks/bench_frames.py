"""Benchmark: protected paginated JSON API -> DataFrame.

Starts a paginated JSON API on 127.0.0.1 in a separate process (pages
pre-serialised, Bearer required, nested records of ~16 columns after
flattening, an optional per-request latency) in three pagination styles:
``/items`` a ``next`` URL plus ``total``/``total_pages`` in the body, ``/link``
GitHub's top-level list with ``Link: rel="next"``/``rel="last"`` (and first/prev),
``/offset`` ``offset``/``limit`` with ``total`` in the body. Each variant runs in a
fresh subprocess (so peak RSS is per variant) and is handed its session made
before the clock starts (the session a user holds after login); medians of:

  (a) baseline: requests_oauthlib.OAuth2Session, the loop people write for the style
      (``body["next"]``; ``r.links["next"]["url"]``; ``offset += limit`` until
      ``offset >= total``), ``r.json()``, accumulate, ``pd.json_normalize`` at the end;
  (b) a plain requests.Session with the Authorization header, same loop;
  (c) ``nb_oauth2.frames.readers.read_json`` through nb_oauth2's own Session;
  (d) the best concurrent pipeline an expert writes: page 1, the remaining URLs from what
      it tells (rel="last", total, total_pages), 8 threads each fetching and parsing its
      pages with pyarrow.json (json + pandas with --no-fast), one concat, one to_pandas.

    python benchmarks/bench_frames.py --issue13  # issue 13's markdown table: 3 styles x page= mid/last x
                                                 # page 100/1000 x 0/50 ms, (a) vs (c) vs (d) (~12 min)
    python benchmarks/bench_frames.py            # --quick: a couple of minutes on 2 cores
    python benchmarks/bench_frames.py --full     # 100k and 1M records, pages 100/1000, 0/50 ms
    python benchmarks/bench_frames.py --records 100000 --page-size 1000 --latency 0 --repeat 5
    python benchmarks/bench_frames.py --no-fast  # NB_OAUTH2_NO_FAST=1: read_json without orjson/pyarrow
    python benchmarks/bench_frames.py --page-at both --page-size 100 1000  # page= last and mid-query

``--page-at middle`` serves URLs whose page parameter sits mid-query, as GitLab's links and GitHub's
with extra parameters do: ``?page=N&n=...&per_page=...&latency_ms=...&sort=id``. ``--pin`` puts the
server on one CPU and every variant on the other (a real API does not share the notebook's CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

TOKEN = "bench-token-0123456789"
STYLES = ("next", "link", "offset")  # body next URL (+ totals), GitHub's Link header, offset/limit + total
DISTINCT_PAGES = 100  # page bodies repeat after this many (ids repeat too): bounds server memory
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- the server (its own process) ----------------------------------------------


def _record(i: int) -> dict:
    return {
        "id": i,
        "node_id": f"MDEwOlJlcG9zaXRvcnk{i:08d}",
        "name": f"repo-{i}",
        "full_name": f"user{i % 977}/repo-{i}",
        "private": i % 5 == 0,
        "owner": {"login": f"user{i % 977}", "id": 1000 + i % 977, "type": "User" if i % 3 else "Organization"},
        "description": None if i % 4 == 0 else f"A repository about topic {i % 31} and more",
        "stargazers_count": (i * 7919) % 10007,
        "score": round((i % 1000) / 7.0, 3),
        "created_at": f"20{10 + i % 14:02d}-0{1 + i % 9}-1{i % 10}T12:{i % 60:02d}:00Z",
        "language": ["Python", "Rust", "Go", None][i % 4],
        "topics": [f"t{i % 13}", f"t{i % 7}"][: i % 3],
        "license": None if i % 6 == 0 else {"key": "mit", "name": "MIT License"},
    }


class _Store:
    def __init__(self) -> None:
        self.blobs: dict[tuple[int, int], list[bytes]] = {}
        self.lock = threading.Lock()

    def blobs_for(self, n: int, size: int) -> list[bytes]:
        with self.lock:
            key = (n, size)
            if key not in self.blobs:
                pages = min(DISTINCT_PAGES, -(-n // size))
                self.blobs[key] = [json.dumps([_record(p * size + i) for i in range(size)],
                                              separators=(",", ":")).encode() for p in range(pages)]
            return self.blobs[key]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms stalls)
    store = _Store()

    def log_message(self, *args) -> None:  # no access log on stderr
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        q = dict(parse_qsl(parts.query))
        style = parts.path.strip("/") if parts.path.strip("/") in STYLES else "next"
        counter = "offset" if style == "offset" else "page"
        size_key = "limit" if style == "offset" else "per_page"
        n, size, latency = int(q.get("n", 1000)), int(q.get(size_key, 100)), float(q.get("latency_ms", 0))
        if parts.path == "/prepare":
            self.store.blobs_for(n, size)
            return self._send(200, b"{}")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, b'{"error":"invalid_token"}', {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if latency:
            time.sleep(latency / 1000)
        total_pages = -(-n // size)
        page = int(q.get("offset", 0)) // size + 1 if style == "offset" else int(q.get("page", 1))
        blobs = self.store.blobs_for(n, size)
        blob = blobs[(page - 1) % len(blobs)] if 1 <= page <= total_pages else b"[]"
        middle = "sort" in q  # the counter first, another parameter after the rest (GitLab, GitHub + params)
        rest = f"n={n}&{size_key}={size}&latency_ms={q.get('latency_ms', 0)}"

        def link(p: int) -> str:
            value = (p - 1) * size if style == "offset" else p
            query = f"{counter}={value}&{rest}&sort={q['sort']}" if middle else f"{rest}&{counter}={value}"
            return f"http://127.0.0.1:{self.server.server_port}{parts.path}?{query}"

        if style == "link":  # GitHub: a top-level list, next/last (and first/prev) in the Link header
            rels = ([(link(page + 1), "next"), (link(total_pages), "last")] if page < total_pages else []) + (
                [(link(1), "first"), (link(page - 1), "prev")] if page > 1 else [])
            return self._send(200, blob, {"Link": ", ".join(f'<{u}>; rel="{r}"' for u, r in rels)})
        if style == "offset":  # offset/limit with the total in the body
            head = f'{{"offset":{(page - 1) * size},"limit":{size},"total":{n},"items":'.encode()
            return self._send(200, head + blob + b"}")
        nxt = json.dumps(link(page + 1) if page < total_pages else None)
        head = (f'{{"page":{page},"per_page":{size},"total":{n},"total_pages":{total_pages},'
                f'"next":{nxt},"data":').encode()
        self._send(200, head + blob + b"}")

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def serve() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    print(server.server_port, flush=True)
    server.serve_forever()


# -- the variants (each in a fresh subprocess) ---------------------------------------


def _oauth_session():
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the bench API is plain http on loopback
    from requests_oauthlib import OAuth2Session

    return OAuth2Session(token={"access_token": TOKEN, "token_type": "Bearer"})


def _style(url: str) -> str:
    path = urlsplit(url).path.strip("/")
    return path if path in STYLES else "next"


def _hand_loop(session, url: str):
    """What people write for each style, sequentially: accumulate records, ``pd.json_normalize`` at the end."""
    import pandas as pd

    records: list = []
    style = _style(url)
    if style == "link":  # GitHub: follow the Link header
        while url:
            r = session.get(url, timeout=30)
            r.raise_for_status()
            records.extend(r.json())
            url = r.links.get("next", {}).get("url")
    elif style == "offset":  # offset += limit until offset >= total
        base, _, query = url.partition("?")
        params = dict(parse_qsl(query))
        offset, limit = int(params["offset"]), int(params["limit"])
        while True:
            params["offset"] = str(offset)
            r = session.get(base, params=params, timeout=30)
            r.raise_for_status()
            body = r.json()
            records.extend(body["items"])
            offset += limit
            if offset >= body["total"]:
                break
    else:  # the body's next URL
        while url:
            r = session.get(url, timeout=30)
            r.raise_for_status()
            body = r.json()
            records.extend(body["data"])
            url = body.get("next")
    return pd.json_normalize(records)


def _plain_session():
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return session


def variant_a(url: str, session):
    """(a) requests_oauthlib.OAuth2Session loop."""
    return _hand_loop(session, url)


def variant_b(url: str, session):
    """(b) plain requests.Session + header, same loop."""
    return _hand_loop(session, url)


def _nb_session():
    """The session a user of nb_oauth2 has after login: auto-refreshing, no env flags needed."""
    from nb_oauth2 import ClientAuth, Provider, Session, Token

    provider = Provider(name="bench", token_endpoint="http://127.0.0.1:1/token")
    return Session(name="bench", provider=provider, client=ClientAuth("bench"),
                   token=Token.from_response({"access_token": TOKEN, "expires_in": 3600}))


def _concurrency(for_limit: bool = False) -> int | str:
    value = os.environ.get("NB_BENCH_CONCURRENCY", "auto")
    if value == "auto":
        return 8 if for_limit else "auto"
    return int(value)


def variant_c(url: str, session):
    from nb_oauth2.frames.readers import read_json

    return read_json(url, session=session, progress=False, concurrency=_concurrency())


def _raw_loop(session, url: str) -> int:
    """Fetch every page sequentially, bytes only: isolates per-request overhead."""
    count = 0
    while url:
        body = json.loads(session.get(url, timeout=30).content)
        count += len(body["data"])
        url = body.get("next")
    return count


class _Rows:
    def __init__(self, n: int) -> None:
        self.n, self.shape = n, (n, 0)

    def __len__(self) -> int:
        return self.n


def variant_r(url: str, session):
    """(r) plain requests.Session + header, raw sequential loop."""
    return _Rows(_raw_loop(session, url))


def variant_s(url: str, session):
    """(s) nb_oauth2's auto-refreshing Session, the same raw sequential loop."""
    return _Rows(_raw_loop(session, url))


def _with(url: str, name: str, value: int) -> str:
    """``url`` with its ``name`` parameter set to ``value`` where it is, else appended."""
    if re.search(rf"[?&]{name}=", url):
        return re.sub(rf"([?&]){name}=\d+", rf"\g<1>{name}={value}", url, count=1)
    return f"{url}&{name}={value}"


def _remaining_urls(url: str, first) -> list[str]:
    """Every URL after page 1, from what page 1 tells (rel="last", total, total_pages)."""
    style = _style(url)
    if style == "link":
        last = first.links.get("last")
        pages = int(dict(parse_qsl(urlsplit(last["url"]).query))["page"]) if last else 1
        return [_with(url, "page", p) for p in range(2, pages + 1)]
    body = json.loads(first.content)
    if style == "offset":
        return [_with(url, "offset", o) for o in range(body["limit"], body["total"], body["limit"])]
    return [_with(url, "page", p) for p in range(2, body["total_pages"] + 1)]


def variant_d(url: str, session):
    """The best concurrent pipeline an expert writes: page 1, then every other page on a thread pool, each
    page parsed by pyarrow.json in its fetching thread (it releases the GIL), one concat, one to_pandas.
    With --no-fast: the same fetch, json + one pd.json_normalize."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=_concurrency(for_limit=True)))
    first = session.get(url, timeout=30)
    urls = _remaining_urls(url, first)
    style = _style(url)
    key = {"link": "_", "offset": "items"}.get(style, "data")
    if os.environ.get("NB_OAUTH2_NO_FAST") == "1":
        import pandas as pd

        with ThreadPoolExecutor(_concurrency(for_limit=True)) as pool:
            raws = [first.content] + list(pool.map(lambda u: session.get(u, timeout=30).content, urls))
        records = [r for raw in raws for r in (json.loads(raw) if key == "_" else json.loads(raw)[key])]
        return pd.json_normalize(records)
    import io

    import pyarrow as pa
    import pyarrow.json as pajson

    def parse(raw: bytes):
        if key == "_":
            raw = b'{"_":' + raw + b"}"
        table = pajson.read_json(io.BytesIO(raw), read_options=pajson.ReadOptions(block_size=len(raw) + 64))
        return pa.Table.from_struct_array(table.column(key).combine_chunks().flatten()).flatten()

    with ThreadPoolExecutor(_concurrency(for_limit=True)) as pool:  # fetch + parse pipelined in each thread
        tables = [parse(first.content)] + list(pool.map(lambda u: parse(session.get(u, timeout=30).content), urls))
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


VARIANTS = {"a": variant_a, "b": variant_b, "c": variant_c, "d": variant_d, "r": variant_r, "s": variant_s}


#: the session each variant is handed, made before the clock starts (the session a user holds after login)
SESSIONS = {"a": _oauth_session, "b": _plain_session, "c": _nb_session, "d": _plain_session, "r": _plain_session,
            "s": _nb_session}


def worker(variant: str, url: str) -> None:
    import pandas  # noqa: F401  (imports before the clock starts)
    import requests  # noqa: F401

    if variant in "cs":
        import nb_oauth2.frames.readers  # noqa: F401
    session = SESSIONS[variant]()
    start, cpu = time.perf_counter(), time.process_time()
    frame = VARIANTS[variant](url, session)
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"secs": secs, "cpu": cpu, "rows": len(frame), "cols": frame.shape[1], "rss_mb": rss_mb}))


# -- the driver ------------------------------------------------------------------


#: --pin: the server's core and the variants' core (the API's CPU is not the notebook's)
SERVER_CPU, CLIENT_CPU = 0, 1


def _pinned(cpu: int | None):
    """A preexec_fn pinning the child process to ``cpu`` (None: no pinning)."""
    if cpu is None or not hasattr(os, "sched_setaffinity") or cpu >= (os.cpu_count() or 1):
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _run_variant(variant: str, url: str, env: dict) -> dict:
    pin = CLIENT_CPU if env.get("NB_BENCH_PIN") == "1" else None
    out = subprocess.run([sys.executable, __file__, "--worker", variant, "--url", url], env=env,
                         capture_output=True, text=True, check=False, preexec_fn=_pinned(pin))
    if out.returncode != 0:
        raise SystemExit(f"variant {variant} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _start_url(port: int, style: str, n: int, size: int, latency: float, page_at: str) -> str:
    counter, size_key = ("offset=0", "limit") if style == "offset" else ("page=1", "per_page")
    path = "items" if style == "next" else style
    rest = f"n={n}&{size_key}={size}&latency_ms={latency:g}"
    if page_at == "middle":
        return f"http://127.0.0.1:{port}/{path}?{counter}&{rest}&sort=id"
    return f"http://127.0.0.1:{port}/{path}?{rest}" + ("" if style == "next" else f"&{counter}")


def _case(port: int, n: int, size: int, latency: float, repeat: int, variants: str, env: dict,
          page_at: str = "end", style: str = "next") -> dict:
    import urllib.request

    urllib.request.urlopen(f"http://127.0.0.1:{port}/prepare?n={n}&per_page={size}").read()
    url = _start_url(port, style, n, size, latency, page_at)
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(repeat):
        for v in variants:
            runs[v].append(_run_variant(v, url, env))
    result = {}
    for v, rs in runs.items():
        secs = statistics.median(r["secs"] for r in rs)
        if len({(r["rows"], r["cols"]) for r in rs}) != 1 or rs[0]["rows"] != n:
            raise SystemExit(f"variant {v} read {[(r['rows'], r['cols']) for r in rs]} of {n} rows ({url})")
        result[v] = {"rows_s": rs[0]["rows"] / secs, "rss_mb": statistics.median(r["rss_mb"] for r in rs),
                     "rows": rs[0]["rows"], "cols": rs[0]["cols"], "secs": secs}
    return result


#: --issue13: (records, page size, latency ms); 1,000 pages at 0 ms, 100 and 200 pages at 50 ms
ISSUE13_CASES = [(100_000, 1000, 0), (100_000, 100, 0), (100_000, 1000, 50), (20_000, 100, 50)]


def _issue13(port: int, args, env: dict) -> None:
    """One markdown table: every style x page= place x page size x latency, (a) vs (c) vs the best pipeline."""
    styles = args.styles or list(STYLES)
    places = ("middle", "end") if args.page_at == "both" else (args.page_at,)
    load_before = os.getloadavg()
    started = time.time()
    rows = []
    print("| pagination | page= at | records | page | latency | hand-written (a) | read_json (c) | best (d) | "
          "(c)/(a) | (c)/best |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cases = [(n, s, lat) for n, s, lat in ISSUE13_CASES if (not args.page_size or s in args.page_size)
             and (not args.latency or lat in args.latency)]
    for n, size, lat in cases:
        for style in styles:
            for at in places:
                repeat = args.repeat or (3 if lat == 0 else 1)
                r = _case(port, n, size, lat, repeat, "acd", env, at, style)
                a, c, d = (r[v]["secs"] for v in "acd")
                flag = "" if c <= a else " **slower**"
                line = (f"| {style} | {at} | {n:,} | {size} | {lat:g} ms | {a:.2f} s | {c:.2f} s | {d:.2f} s | "
                        f"{a / c:.2f}x{flag} | {d / c:.2f}x |")
                rows.append(line)
                print(line, flush=True)
    pin = (f"server pinned to CPU {SERVER_CPU}, each variant to CPU {CLIENT_CPU}" if env.get("NB_BENCH_PIN") == "1"
           else "server and variants unpinned")
    runs = f"median of {args.repeat} runs" if args.repeat else "median of 3 runs at 0 ms, 1 run at 50 ms"
    print(f"\nEach variant in a fresh process, its session made before the clock, {runs}; {pin}; "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"{time.time() - started:.0f} s in all. (a) requests_oauthlib loop + json_normalize, (c) "
          "nb_oauth2.read_json through nb_oauth2's Session, (d) hand-written concurrent fetch (8 threads) + "
          "pyarrow.json per page; ratios are speed-ups (higher is faster for (c)).")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--full", action="store_true", help="every case (long: 1M records at 50 ms take many minutes)")
    p.add_argument("--records", type=int, nargs="*", help="record counts (default quick set)")
    p.add_argument("--page-size", type=int, nargs="*", help="page sizes")
    p.add_argument("--latency", type=float, nargs="*", help="per-request latency, ms")
    p.add_argument("--repeat", type=int, default=None, help="runs per variant (median)")
    p.add_argument("--variants", default="abcd")
    p.add_argument("--no-fast", action="store_true", help="NB_OAUTH2_NO_FAST=1 (no orjson/pyarrow)")
    p.add_argument("--concurrency", default="auto",
                   help='read_json(concurrency=...) for (c); "auto" (default) or a number, also used by (d)')
    p.add_argument("--page-at", choices=("end", "middle", "both"), default="end",
                   help="where the page parameter sits in the API's URLs: last (default), mid-query, or both rows")
    p.add_argument("--issue13", action="store_true",
                   help="issue 13's table: Link / offset / body-next styles x page 100, 1000 x 0, 50 ms, "
                        "(a) vs (c) vs the best concurrent pipeline, as markdown")
    p.add_argument("--styles", nargs="*", choices=STYLES, help="--issue13: pagination styles (default all)")
    p.add_argument("--pin", action="store_true",
                   help=f"pin the server to CPU {SERVER_CPU} and every variant to CPU {CLIENT_CPU} (as a real API "
                        "does not share the notebook's CPU; applies to all variants alike)")
    p.add_argument("--overhead", action="store_true",
                   help="per-request overhead of nb_oauth2's Session (s) vs a plain requests.Session (r)")
    args = p.parse_args(argv)
    if args.serve:
        return serve()
    if args.worker:
        return worker(args.worker, args.url)
    if args.full:
        cases = [(n, s, lat) for n in (100_000, 1_000_000) for s in (100, 1000) for lat in (0, 50)]
    elif args.records or args.page_size or args.latency:
        cases = [(n, s, lat) for n in (args.records or [100_000]) for s in (args.page_size or [1000])
                 for lat in (args.latency or [0])]
    else:  # --quick
        cases = [(100_000, 1000, 0), (100_000, 100, 0), (100_000, 1000, 50), (20_000, 100, 50)]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if args.no_fast:
        env["NB_OAUTH2_NO_FAST"] = "1"
    env["NB_BENCH_CONCURRENCY"] = str(args.concurrency)
    env["NB_BENCH_PIN"] = "1" if args.pin else "0"
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True,
                              preexec_fn=_pinned(SERVER_CPU if args.pin else None))
    try:
        port = int(server.stdout.readline())
        if args.issue13:
            return _issue13(port, args, env)
        if args.overhead:
            return _overhead(port, args.repeat or 7, env)
        print(f"| records | page | latency ms | page= at | {' | '.join(f'({v}) rows/s' for v in args.variants)} | "
              f"{' | '.join(f'({v}) MB' for v in args.variants)} | c/a rows/s | c/a RSS | c/d rows/s |")
        print("|" + "---|" * (4 + 2 * len(args.variants) + 3))
        places = ("end", "middle") if args.page_at == "both" else (args.page_at,)
        for (n, size, lat), at in ((case, at) for case in cases for at in places):
            repeat = args.repeat or (3 if lat == 0 else 1)
            r = _case(port, n, size, lat, repeat, args.variants, env, at)
            ratio = lambda x, y, k: f"{r[x][k] / r[y][k]:.2f}" if x in r and y in r else "-"  # noqa: E731
            print(f"| {n:,} | {size} | {lat:g} | {at} | "
                  + " | ".join(f"{r[v]['rows_s']:,.0f}" for v in args.variants)
                  + " | " + " | ".join(f"{r[v]['rss_mb']:.0f}" for v in args.variants)
                  + f" | {ratio('c', 'a', 'rows_s')} | {ratio('c', 'a', 'rss_mb')} | {ratio('c', 'd', 'rows_s')} |",
                  flush=True)
    finally:
        server.terminate()
        server.wait()


def _overhead(port: int, repeat: int, env: dict) -> None:
    """Time per request of (s) vs (r): 1,000 sequential small pages, interleaved runs, medians."""
    n, size = 20_000, 20
    r = _case(port, n, size, 0, repeat, "rs", env)
    per_r, per_s = size / r["r"]["rows_s"] * 1e6, size / r["s"]["rows_s"] * 1e6
    print(f"per request: (r) requests.Session {per_r:.0f} us, (s) nb_oauth2.Session {per_s:.0f} us, "
          f"overhead {100 * (per_s / per_r - 1):+.1f}% ({n // size:,} requests, median of {repeat})")


if __name__ == "__main__":
    main()
