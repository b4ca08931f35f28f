"""A local HTTP file server on 127.0.0.1 for download tests: it honours Range requests, and can answer with
errors or break off a response a given number of times, recording every request it gets."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[tuple[int, dict[str, str]]]] = {}  # path -> [(status, headers), ...]
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
                if server.failures.get(self.path):
                    status, headers = server.failures[self.path].pop(0)
                    self.send_response(status)
                    for key, value in {**headers, "Content-Length": "0"}.items():
                        self.send_header(key, value)
                    self.end_headers()
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

        return Handler
