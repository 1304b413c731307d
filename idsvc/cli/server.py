"""How ``idsvc serve`` runs uvicorn: its timeouts and limits, and no software banner.

Slow or greedy clients must not tie up a worker (a ministry server faces the internet):

- ``HEADER_TIMEOUT``: a connection must deliver a request's headers within this time of its
  first byte (or of connecting), or it is closed. uvicorn has no such timeout of its own, so
  ``_HeaderDeadline`` adds it to uvicorn's HTTP protocol classes.
- the body of a request must arrive within ``mobile_api.limits.BODY_TIMEOUT`` (the app's
  ``BodyLimit`` middleware answers 408), and is at most 64 KiB;
- ``KEEP_ALIVE``: an idle keep-alive connection is closed after this many seconds;
- ``CONCURRENCY``: connections plus tasks per worker beyond this get 503 at once instead of
  queueing without end; ``BACKLOG``: pending connections the kernel holds for us;
- ``GRACEFUL_SHUTDOWN``: requests in flight get this long to finish on SIGTERM;
- ``HEAD_LIMIT``: a request line plus headers of more than 16 KiB (nginx's default
  ``large_client_header_buffers`` is 4 x 8 KiB; h11's limit is 16 KiB) is answered 431 and the
  rest of it is read and dropped (``_HeadLimit``). httptools has no limit of its own: four
  requests with 64 MB headers grew the workers by 300 MB.

No ``server:`` header is sent (it only tells an attacker which software to target).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors.multiprocess import Multiprocess

from idsvc.cli.observability import log_config

HEADER_TIMEOUT = 10.0
KEEP_ALIVE = 5
CONCURRENCY = 512
BACKLOG = 1024
GRACEFUL_SHUTDOWN = 10
WORKER_HEALTHCHECK = 20
HEAD_LIMIT = 16 * 1024
HEAD_LINGER = 2.0  # seconds a refused client gets to read the 431 before the connection closes

log = logging.getLogger("uvicorn.error")


def _head_too_large() -> bytes:
    """The 431 answer: a problem+json body like the app's (``mobile_api.problems``), written
    here because the app never sees a request whose head was refused."""
    body = json.dumps(
        {
            "type": "urn:idsvc:problem:headers_too_large",
            "title": "Request Header Fields Too Large",
            "status": 431,
            "code": "HEADERS_TOO_LARGE",
            "detail": f"the request line and headers may take at most {HEAD_LIMIT} bytes",
        }
    ).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "cache-control: no-store\r\n"
        "x-content-type-options: nosniff\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _HeaderDeadline(asyncio.Protocol):
    """Close a connection whose next request headers do not arrive within ``HEADER_TIMEOUT``.

    The deadline starts when the connection opens and again when a response is complete; the
    headers are in once uvicorn has made a new ``cycle`` for the request. At the deadline the
    connection is closed if it is still waiting for headers and either never sent a request
    (silent) or has sent part of one (trickling); a keep-alive connection that sends nothing is
    left to uvicorn's keep-alive timeout. (Bytes that arrive before the previous response is
    complete, i.e. pipelined requests, are not counted as trickling.) The attributes used
    (``loop``, ``transport``, ``cycle``, ``on_response_complete``) are shared by uvicorn's h11
    and httptools protocols.
    """

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    _deadline: asyncio.TimerHandle | None = None
    _armed_for: Any = None
    _first: bool = True
    _partial: bool = False

    def _arm(self) -> None:
        self._disarm()
        self._armed_for, self._partial = self.cycle, False
        self._deadline = self.loop.call_later(HEADER_TIMEOUT, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        waiting = self.cycle is self._armed_for and (
            self.cycle is None or self.cycle.response_complete
        )
        if waiting and (self._first or self._partial) and not self.transport.is_closing():
            self.transport.close()  # a silent or trickling client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is None:
            return
        if self.cycle is not self._armed_for:
            self._first = False
            self._disarm()  # the awaited request's headers are complete
        else:
            self._partial = True

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


class _HeadLimit(asyncio.Protocol):
    """Answer 431 to a request whose line and headers exceed ``HEAD_LIMIT`` bytes, before
    the parser holds more than that.

    httptools gathers a header's name and value in memory until the header ends, and uvicorn
    the URL, so the limit cannot wait for their callbacks: the bytes are counted as they arrive.
    While a request head is being read (``_head`` is its byte count), a read that would cross
    the limit is fed only up to it; if the parser has not seen the end of the head by then
    (``on_headers_complete``), the head is too large. The answer goes out, the connection is
    half-closed, and whatever the client still sends is dropped unread for ``HEAD_LINGER``
    seconds (closing at once would reset the connection and lose the answer). A request
    pipelined in the same read as the end of the previous one is counted from the next read:
    at most one read (256 KiB) more. uvicorn's httptools protocol only (h11 has its own
    limit, ``h11_max_incomplete_event_size``).
    """

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _head: int | None = 0  # None: between the end of a head and the end of its request
    _dropping: bool = False

    def data_received(self, data: bytes) -> None:
        if self._dropping:
            return
        if self._head is None or len(data) <= HEAD_LIMIT - self._head:
            if self._head is not None:
                self._head += len(data)
            super().data_received(data)
            return
        room = HEAD_LIMIT - self._head
        super().data_received(data[:room])
        if self.transport.is_closing():
            return  # the parser refused the request (400)
        if self._head is not None:
            self._refuse()
            return
        super().data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._head = None
        super().on_headers_complete()  # type: ignore[misc]

    def on_message_complete(self) -> None:
        super().on_message_complete()  # type: ignore[misc]
        self._head = 0

    def _refuse(self) -> None:
        log.warning("request head over %d bytes refused (431)", HEAD_LIMIT)
        self._dropping = True
        self.transport.write(_head_too_large())
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(HEAD_LINGER, self.transport.close)


class GuardedH11Protocol(_HeaderDeadline, H11Protocol):
    pass


try:  # what uvicorn's "auto" picks: httptools when installed
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover
    GUARDED_PROTOCOL: type[asyncio.Protocol] = GuardedH11Protocol
else:

    class GuardedHttpToolsProtocol(_HeaderDeadline, _HeadLimit, HttpToolsProtocol):
        pass

    GUARDED_PROTOCOL = GuardedHttpToolsProtocol


def server_config(
    host: str, port: int, workers: int, log_format: Literal["json", "text"] = "json"
) -> uvicorn.Config:
    return uvicorn.Config(
        "mobile_api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=log_config(log_format),  # idsvc/cli/observability.py
        access_log=False,  # mobile_api.request_context logs route templates, not raw paths
        proxy_headers=False,
        server_header=False,
        http=GUARDED_PROTOCOL,
        h11_max_incomplete_event_size=HEAD_LIMIT,  # when h11 serves (httptools: _HeadLimit)
        timeout_keep_alive=KEEP_ALIVE,
        limit_concurrency=CONCURRENCY,
        backlog=BACKLOG,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        # A spawned worker answers the supervisor's ping only after its imports (~2-4 s on a
        # busy 2-core host); uvicorn's 5 s default then kills healthy workers in a loop.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK,
    )


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, which also notices a worker that dies while its ping is out.

    The supervisor pings each worker over a pipe and waits up to ``WORKER_HEALTHCHECK`` for the
    answer. It keeps its own copy of the worker's end of that pipe, so a worker killed while a
    ping is out (``kill -9``, the OOM killer, often a worker that hung first) is noticed only at
    the timeout: 20 s at half capacity (bench/fault_worker_kill.py --hang-first 2: 18.4 s).
    With the copy closed once the worker has its own, its death ends the wait at once
    (end-of-file), and the supervisor replaces it within its half-second loop.
    """

    def init_processes(self) -> None:
        super().init_processes()
        self._drop_worker_ends()

    def keep_subprocess_alive(self) -> None:
        self._drop_worker_ends()  # also of workers started since (replacements, SIGHUP, TTIN)
        super().keep_subprocess_alive()

    def _drop_worker_ends(self) -> None:
        for worker in self.processes:
            # After start() the child holds its own descriptor (passed at spawn); closing an
            # already closed Connection does nothing.
            if worker.process.pid is not None:
                worker.child_conn.close()


def run_server(
    host: str, port: int, workers: int, log_format: Literal["json", "text"] = "json"
) -> None:
    config = server_config(host, port, workers, log_format)
    if workers <= 1:
        # uvicorn.run's behaviour: Ctrl-C (SIGINT) after a clean shutdown is a normal exit.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()
        return
    # uvicorn binds its multi-worker socket without IPPROTO_TCP, so asyncio never sets
    # TCP_NODELAY on accepted connections and each keep-alive response waits ~45 ms for a
    # delayed ACK (measured: bench/bench_http.py). Bind the socket ourselves.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    with contextlib.suppress(KeyboardInterrupt):
        _Supervisor(config, sockets=[sock]).run()
