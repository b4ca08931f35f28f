"""A local HTTP file server on 127.0.0.1 for download tests: it honours Range requests, and can answer with
errors or break off a response a given number of times, recording every request it gets. ``routes`` answer a
path (without query) from a function of the query, as a web API does."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        # path (with query, or a route's path) -> [(status, headers) or (status, headers, body), ...]
        self.failures: dict[str, list[tuple]] = {}
        self.routes: dict[str, Callable[[dict[str, str]], bytes]] = {}  # path -> body from the query
        self.breaks: dict[str, int] = {}  # path -> bytes sent before the connection drops, once
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def requests_for(self, path: str) -> list[str | None]:
        return [ranges for p, ranges in self.requests if p == path]

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                ranges = self.headers.get("Range")
                server.requests.append((self.path, ranges))
                route = urlsplit(self.path).path
                failures = server.failures.get(self.path) or server.failures.get(route)
                if failures:
                    status, headers, *body = failures.pop(0)
                    self._answer(status, headers, body[0] if body else b"")
                    return
                if route in server.routes:
                    query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                    self._answer(200, {"Content-Type": "application/json"}, server.routes[route](query))
                    return
                if self.path not in server.files:
                    self.send_error(404)
                    return
                data = server.files[self.path]
                start = int(m.group(1)) if ranges and (m := re.fullmatch(r"bytes=(\d+)-", ranges)) else 0
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                cut = server.breaks.pop(self.path, None)
                self.wfile.write(data[start:] if cut is None else data[start : start + cut])
                self.wfile.flush()

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler
