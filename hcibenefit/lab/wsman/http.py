"""A node's HTTP/1.1 listener: keep-alive connections, optional TLS, and closing on demand.

NTLM authenticates a TCP connection rather than a request, so each connection gets its own thread and
`Connection` object for the whole keep-alive session.
"""

from __future__ import annotations

import contextlib
import http
import http.client
import logging
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import BinaryIO

from hcibenefit.lab.wsman.auth import NegotiateAcceptor
from hcibenefit.lab.wsman.inflight import REQUESTS

log = logging.getLogger(__name__)

_POLL_S = 0.2  # how quickly accept loops and hung requests notice that they should end
_MAX_LINE = 65536


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)


class Connection:
    def __init__(self, peer: str, certificate: bytes | None = None) -> None:
        self.peer = peer
        self.negotiate: NegotiateAcceptor | None = None
        # The client's TLS certificate (DER), when it presented one the server's CA verified.
        self.certificate = certificate


# The handler answers a request, or returns None to leave it unanswered (the hang fault).
Handler = Callable[[Connection, HttpRequest], HttpResponse | None]


def _read_request(rfile: BinaryIO) -> HttpRequest | None:
    line = rfile.readline(_MAX_LINE)
    if not line:
        return None
    method, path, _version = line.decode("latin-1").split()
    headers = http.client.parse_headers(rfile)
    # Limitation: bodies must carry Content-Length (pypsrp always sends it); chunked bodies are not read.
    length = int(headers.get("Content-Length") or 0)
    body = rfile.read(length) if length else b""
    return HttpRequest(method, path, headers, body) if len(body) == length else None


def _render(response: HttpResponse, keep_alive: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {response.status} {http.HTTPStatus(response.status).phrase}",
        "Server: Microsoft-HTTPAPI/2.0",
        f"Content-Length: {len(response.body)}",
    ]
    if response.content_type:
        lines.append(f"Content-Type: {response.content_type}")
    lines += [f"{name}: {value}" for name, value in response.headers]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


class Listener:
    """A listening socket that can be closed (connections refused) and re-opened on the same address and port."""

    def __init__(
        self,
        name: str,
        address: str,
        tls: ssl.SSLContext | None,
        handler: Handler,
        connect_delay_s: Callable[[], float] = lambda: 0.0,
        answer_delay_s: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.name = name
        self._connect_delay_s = connect_delay_s
        self._answer_delay_s = answer_delay_s
        self.address = address
        self.port = 0
        self._tls = tls
        self._handler = handler
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._woken = False
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.connections_opened = 0
        """Connections accepted and, over HTTPS, through the TLS handshake (before any request)."""

    def bind(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Re-opening after a `down` fault must get the same port although old connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.address, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        # Blocking: an idle accept loop costs nothing (a 400-node lab polling every 0.2 s spent 3% of a
        # core doing nothing); closing wakes it with a connection of its own (`_wake`).
        sock.settimeout(None)
        self._sock, self.port = sock, sock.getsockname()[1]

    def open(self) -> None:
        self.bind()
        if self._thread is None and self._sock is not None:
            self._closing.clear()
            self._woken = False
            self._thread = threading.Thread(
                target=self._accept_loop, args=(self._sock,), name=f"wsman-{self.name}-accept", daemon=True
            )
            self._thread.start()

    def begin_close(self) -> None:
        """Signal the accept loop and hung requests without waiting, so many listeners close in parallel."""
        self._closing.set()
        self._wake()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._wake()
            self._thread.join(timeout=5 * _POLL_S)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._lock:
            for conn in self._connections:
                # The base-class shutdown wakes a thread blocked reading this socket; SSLSocket's own
                # would also drop its TLS object under that thread.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def _wake(self) -> None:
        """Connect to the listening socket once, so a blocked accept returns and sees that it should end
        (portable, where shutting the listening socket down wakes accept on Linux only)."""
        if self._woken or self._thread is None or self._sock is None:
            return
        self._woken = True
        address = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
        with contextlib.suppress(OSError):
            socket.create_connection((address, self.port), timeout=_POLL_S).close()

    def _accept_loop(self, sock: socket.socket) -> None:
        while not self._closing.is_set():
            try:
                client, peer = sock.accept()
            except OSError:
                break
            if self._closing.is_set():  # the connection `_wake` made, or one that came too late
                client.close()
                break
            client.settimeout(None)
            # A response larger than one TLS record is two writes; with Nagle on, the second waits for
            # the client's delayed ACK (40 ms on Linux) before it leaves. Windows' HTTP.sys adds no such
            # stall, so neither may the lab: the injected latency must be the only latency.
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(
                target=self._serve, args=(client, peer[0]), name=f"wsman-{self.name}-conn", daemon=True
            ).start()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def _serve(self, sock: socket.socket, peer: str) -> None:
        self._track(sock, True)
        try:
            # A real network's TCP and TLS round trips, before the client hears the handshake's answer.
            delay = self._connect_delay_s()
            if delay and self._closing.wait(delay):
                return
            certificate = None
            if self._tls is not None:
                # The plain socket stays tracked during the handshake so close() can still end it.
                tls_sock = self._tls.wrap_socket(sock, server_side=True)
                self._track(sock, False)
                sock = tls_sock
                self._track(sock, True)
                certificate = tls_sock.getpeercert(binary_form=True)
            with self._lock:
                self.connections_opened += 1
            conn = Connection(peer, certificate)
            with sock.makefile("rb") as rfile:
                while not self._closing.is_set() and (request := _read_request(rfile)) is not None:
                    # The injected latency: the request reaches the host this much later.
                    delay = self._answer_delay_s()
                    if delay and self._closing.wait(delay):
                        break
                    keep_alive = request.headers.get("Connection", "").lower() != "close"
                    # Handled and answered before any script this process has yet to start (inflight.py).
                    with REQUESTS.answering():
                        response = self._handler(conn, request)
                        if response is not None:
                            sock.sendall(_render(response, keep_alive))
                    if response is None:
                        self._await_hangup(sock)
                        break
                    if not keep_alive:
                        break
        except (OSError, ValueError) as exc:
            # Clients going away and sockets shut down by close() end up here.
            log.debug("%s: connection from %s ended: %s", self.name, peer, exc)
        finally:
            self._track(sock, False)
            sock.close()

    def _await_hangup(self, sock: socket.socket) -> None:
        # pypsrp never sends a second request before the first is answered, so anything readable
        # (normally the end of the stream) means the client gave up.
        while not self._closing.is_set():
            if select.select([sock], [], [], _POLL_S)[0]:
                return
