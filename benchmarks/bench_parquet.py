"""Benchmark: to_parquet's peak memory on a 1M-row pull whose schema drifts at row 900,000 (issue 15).

A paginated JSON API on 127.0.0.1 (a thread of this process) serves ``--records`` GitHub-like records in
pages of ``--page-size`` (a ``next`` URL and ``total_pages`` in every body, Bearer required); a nested
``milestone`` object is null until ``--late-at``, where it and a ``late_score`` float column first appear.
The pull runs ``nb_oauth2.frames.readers.to_parquet`` in a fresh subprocess (so its peak RSS is its own,
not the server's) and prints the rows written, the seconds, the subprocess's RSS before the pull and its
peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) against the stated bound; exit status 1 above it.

The bound: imports + one page + ``ROW_GROUP_ROWS`` (65,536) rows buffered + the pages in flight on the
reader threads; it does not grow with the number of rows. Stated as ``--bound-mb`` (default 400 MB).

    python benchmarks/bench_parquet.py                      # 1M records, pages of 1,000, late at 900,000
    python benchmarks/bench_parquet.py --records 200000 --late-at 180000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "bench-parquet-token-0123456789"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _record(i: int, late_at: int) -> dict:
    record = {
        "id": i,
        "title": f"Issue {i}",
        "state": "open" if i % 3 else "closed",
        "user": {"login": f"user{i % 977}", "id": 1000 + i % 977},
        "comments": i % 17,
        "created_at": f"2024-0{1 + i % 9}-1{i % 10}T12:{i % 60:02d}:00Z",
        "labels": [{"id": i % 11, "name": f"l{i % 11}"}][: i % 2],
        "milestone": None,
    }
    if i >= late_at:
        record["milestone"] = {"id": i % 50, "title": f"v{i % 50}.0", "due_on": None}
        record["late_score"] = (i % 1000) / 7.0
    return record


def _serve(records: int, size: int, late_at: int) -> tuple[ThreadingHTTPServer, str]:
    pages = -(-records // size)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            page = int(parse_qs(urlsplit(self.path).query).get("page", ["1"])[0])
            first = (page - 1) * size
            data = [_record(i, late_at) for i in range(first, min(first + size, records))]
            nxt = f"{base}/issues?page={page + 1}" if page < pages else None
            body = json.dumps({"data": data, "next": nxt, "total_pages": pages}, separators=(",", ":")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, base


_PULL = """
import json, resource, sys, time
import requests
from nb_oauth2.frames import readers
http = requests.Session()
http.headers["Authorization"] = "Bearer " + sys.argv[3]
after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
rows = readers.to_parquet(sys.argv[1], sys.argv[2], session=http, progress=False, max_pages=None)
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started, "after_imports_kb": after_imports,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--late-at", type=int, default=900_000)
    parser.add_argument("--bound-mb", type=float, default=400.0)
    args = parser.parse_args()
    server, base = _serve(args.records, args.page_size, args.late_at)
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "issues.parquet")
        proc = subprocess.run([sys.executable, "-c", _PULL, f"{base}/issues?page=1", out, TOKEN], cwd=ROOT,
                              capture_output=True, text=True, check=False)
        server.shutdown()
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            return 2
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(out).metadata
        schema = pq.read_schema(out)
        late_nulls = pq.read_table(out, columns=["late_score"]).column("late_score").null_count
        size_mb = os.path.getsize(out) / 1e6
    peak_mb, imports_mb = result["peak_kb"] / 1024, result["after_imports_kb"] / 1024
    print(f"to_parquet: {result['rows']:,} rows ({args.page_size:,} a page; milestone.* and late_score first "
          f"filled at row {args.late_at:,}) in {result['seconds']:.1f} s -> {size_mb:.1f} MB, "
          f"{meta.num_row_groups} row groups, {len(schema)} columns, late_score null in {late_nulls:,} rows")
    print(f"peak RSS {peak_mb:.0f} MB (before the pull, pyarrow not yet loaded: {imports_mb:.0f} MB; the pull added {peak_mb - imports_mb:.0f} MB)"
          f" against the stated bound of {args.bound_mb:.0f} MB: {'OK' if peak_mb <= args.bound_mb else 'OVER'}")
    return 0 if peak_mb <= args.bound_mb and result["rows"] == args.records else 1


if __name__ == "__main__":
    sys.exit(main())
