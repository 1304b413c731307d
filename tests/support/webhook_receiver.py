"""A real HTTP webhook receiver on loopback, for the webhook tests (records what it gets)."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    got: list[Received] = field(default_factory=list)
    status: int = 204


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def receiver(
    port: int | None = None, status: int = 204, tls: ssl.SSLContext | None = None
) -> Iterator[Receiver]:
    """``tls``: serve https with this context (the URL then says https)."""
    port = port or free_port()
    scheme = "https" if tls else "http"
    box = Receiver(f"{scheme}://127.0.0.1:{port}/hooks/idsvc", status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            box.got.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(box.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def silent_receiver() -> Iterator[str]:
    """A receiver that accepts connections and never answers (a hung bank server): the
    kernel completes the handshake into the listen backlog, nothing ever reads or replies."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/idsvc"


@dataclass
class SlowReceiver:
    url: str
    connections: int = 0


@contextmanager
def slow_receiver(every: float = 1.0) -> Iterator[SlowReceiver]:
    """A slow-loris receiver: it reads the request, answers ``200 OK`` at once, then sends one
    more header line every ``every`` seconds and never ends its header block. Each read of the
    sender gets a byte well within any per-read timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)  # so that the accepting thread sees ``stop``
    box = SlowReceiver(f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/idsvc")
    stop = threading.Event()

    def dribble(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not stop.wait(every):
                    conn.sendall(b"X-Slow: 1\r\n")
            except OSError:
                return  # the sender gave up

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            box.connections += 1
            threading.Thread(target=dribble, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def verify_v1a(public_key: str, received: Received) -> None:
    """Check a v1a (Ed25519) Standard Webhooks signature from the published key alone.

    The ``standardwebhooks`` package implements only the symmetric ``v1`` scheme, so the
    asymmetric one is checked with ``cryptography`` directly, as the spec defines it: the
    signature covers ``{webhook-id}.{webhook-timestamp}.{body}``.
    """
    assert public_key.startswith("whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[5:]))
    content = (
        received.headers["webhook-id"].encode()
        + b"."
        + received.headers["webhook-timestamp"].encode()
        + b"."
        + received.body
    )
    signatures = [
        s.split(",", 1)[1]
        for s in received.headers["webhook-signature"].split()
        if s.startswith("v1a,")
    ]
    assert signatures, received.headers["webhook-signature"]
    key.verify(base64.b64decode(signatures[0]), content)  # raises InvalidSignature
