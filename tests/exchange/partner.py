"""A partner that misbehaves on demand: an HTTP front for the live server that can be down,
answer 500, or stall after passing a request on."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FlakyPartner:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.port = free_port()
        self.fail_next = 0  # answer this many requests with 500
        self.stall_seconds = 0.0  # pass the request on, then wait this long before answering
        self.seen: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FlakyPartner:
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                partner.seen.append((self.command, self.path))
                if partner.fail_next > 0:
                    partner.fail_next -= 1
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
                upstream = requests.request(
                    self.command, partner.target + self.path, headers=headers, data=body, timeout=30
                )
                time.sleep(partner.stall_seconds)
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

            def log_message(self, *args) -> None:
                pass

        self._server = serve(self.port, Handler)
        return self

    def stop(self) -> None:
        """Go down: connections are refused until start() again."""
        self._server = shut(self._server)


def serve(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """Serve on 127.0.0.1:port from a thread of this process."""
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def shut(server: ThreadingHTTPServer | None) -> None:
    if server:
        server.shutdown()
        server.server_close()
