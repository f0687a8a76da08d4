"""gunicorn's settings for dmed (`gunicorn -c python:dmed.gunicorn_conf dmed.wsgi`).

gunicorn answers some requests itself, before Django sees them: a request line over the limit
(414), headers too large (431), a malformed request (400). Its own answer is an HTML page; a FHIR
client expects an OperationOutcome, and for a long search the hint to POST it to _search. So its
error writer is replaced by one that writes an OperationOutcome (gunicorn calls it as
`util.write_error(sock, status, reason, message)`)."""

from __future__ import annotations

import json

from gunicorn import util

# Each worker listens on a socket of its own (SO_REUSEPORT), among which the kernel spreads new
# connections. On one shared socket, whichever worker wakes first takes what is waiting: a client's
# 8 keep-alive connections, opened at once, often all went to one process and its one GIL, and the
# same load ran at anything from a third to all of the machine (benchmarks/load.py, README).
reuse_port = True
limit_request_line = 8190  # gunicorn's largest; longer searches go by POST _search
limit_request_fields = 100
limit_request_field_size = 8190

HINTS = {
    414: "The request line is too long. Send a long search as POST [base]/[type]/_search with the "
    "parameters in an application/x-www-form-urlencoded body.",
    431: "The request's headers are too large.",
}


def write_outcome(sock, status_int: int, reason: str, mesg: str) -> None:
    diagnostics = HINTS.get(status_int) or f"{reason}: {mesg}".rstrip(": ")
    code = {414: "too-long", 431: "too-long"}.get(
        status_int, "structure" if status_int < 500 else "exception"
    )
    body = json.dumps(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)


util.write_error = write_outcome


# Processes and threads each. Chosen by measurement (benchmarks/load.py, README's Performance):
# on 2 cores, 4 processes of 2 threads serve reads about as fast as 2 of 8 and cut the slowest
# writes' wait (p95 of a conditional create 1,000 -> 100-160 ms) because fewer threads contend
# for each process's GIL and none waits behind 7 others. WEB_WORKERS and WEB_THREADS override them.
WORKERS, THREADS = 4, 2


def gunicorn_command(bind: str, *, workers: int | None = None, threads: int | None = None) -> list[str]:
    """The command that runs the web app under gunicorn with these settings, as `make demo` does
    (and the tests and benchmarks that go through gunicorn)."""
    import os
    import sys

    workers = workers or int(os.environ.get("WEB_WORKERS", WORKERS))
    threads = threads or int(os.environ.get("WEB_THREADS", THREADS))
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:dmed.gunicorn_conf",
        "dmed.wsgi",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--graceful-timeout",
        "5",
    ]
