"""A subscriber's endpoint for tests: records what arrives and answers as told."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.exchange.partner import free_port, serve, shut


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: str

    @property
    def status(self) -> dict:
        """The SubscriptionStatus parameters of a notification Bundle, by name."""
        parameters = json.loads(self.body)["entry"][0]["resource"]["parameter"]
        return {p["name"]: p for p in parameters}

    @property
    def kind(self) -> str:
        return self.status["type"]["valueCode"]

    @property
    def numbers(self) -> list[int]:
        events = json.loads(self.body)["entry"][0]["resource"]["parameter"]
        return [
            int(part["valueString"])
            for event in events
            if event["name"] == "notification-event"
            for part in event["part"]
            if part["name"] == "event-number"
        ]


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.answer = 200  # the status code given to every request
        self.taken: list[Received] = []  # what was answered with a 2xx
        self.refused = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def notifications(self) -> list[Received]:
        return [r for r in self.taken if r.body and r.kind == "event-notification"]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _take(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                status = receiver.answer
                if 200 <= status < 300:
                    receiver.taken.append(Received(self.command, self.path, dict(self.headers), body))
                else:
                    receiver.refused += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _take

            def log_message(self, *args) -> None:
                pass

        self._server = serve(self.port, Handler)
        return self

    def stop(self) -> None:
        self._server = shut(self._server)
