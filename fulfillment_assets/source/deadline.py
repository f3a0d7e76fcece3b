"""A deadline for a whole page: connect, status line, headers and body.

requests' timeout bounds each wait for bytes, so a server dripping its headers a byte a second
never times out. Here one shared watchdog thread shuts a page's socket down at its deadline,
which wakes the read blocked on it in the calling thread; the transport then reports a timeout.

The socket is reached through urllib3's public extension points: connection classes plugged
into connection pools (`ConnectionCls`), plugged into a `PoolManager` (`pool_classes_by_scheme`).
The page being sent is carried from the adapter to its connection by a thread-local: urllib3
opens and uses a connection in the thread that sends the request.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection


class PageDeadline:
    """One page's deadline and the sockets it reads from; `expired` once the watchdog fired."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self._done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if not self._done:
                self._sockets.append(sock)
            if self.expired:  # connected after the deadline: cut at once
                _shut_down(sock)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                _shut_down(sock)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._sockets.clear()


def _shut_down(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for TLS: it wakes a blocked read without touching the
    # TLS state the reading thread is using. Closing is left to urllib3, which owns the socket.
    with suppress(OSError):  # already closed, or never connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_IDLE_SECONDS = 1.0


class _Watchdog:
    """One daemon thread for every page in flight; it ends once idle, no page in flight."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int, PageDeadline]] = []
        self._order = itertools.count()
        self._in_flight = 0
        self._thread: threading.Thread | None = None

    def watch(self, page: PageDeadline) -> None:
        with self._wake:
            heapq.heappush(self._heap, (page.at, next(self._order), page))
            self._in_flight += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="fulfillment-page-deadline", daemon=True
                )
                self._thread.start()
            elif page.at <= self._heap[0][0]:
                self._wake.notify()

    def release(self, page: PageDeadline) -> None:
        page.finish()
        with self._wake:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._heap.clear()
                self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                # Idle: linger a moment, so a walk's next page does not start a new thread.
                idle = not self._heap
                if idle and not self._wake.wait_for(lambda: bool(self._heap), _IDLE_SECONDS):
                    self._thread = None
                    return
                at, _, page = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                page.expire()


_watchdog = _Watchdog()
# A forked child has none of the parent's threads: it starts a watchdog of its own.
os.register_at_fork(after_in_child=_watchdog.reset)
_current = threading.local()


@contextmanager
def page_deadline(seconds: float) -> Iterator[PageDeadline]:
    """Every connection this thread opens or uses within the block is cut at the deadline."""
    page = PageDeadline(seconds)
    _watchdog.watch(page)
    _current.page = page
    try:
        yield page
    finally:
        _current.page = None
        _watchdog.release(page)


def _attach_current(sock: socket.socket | None) -> None:
    page: PageDeadline | None = getattr(_current, "page", None)
    if page is not None:
        page.attach(sock)


class _PageSockets:
    """Registers every socket the connection holds with the page being sent.

    `sock` is set as soon as the TCP connection is made, before any TLS handshake, and again
    with the TLS socket: a handshake dripping bytes is cut at the page deadline too. A socket
    reused from the pool is registered when the next request goes out on it.
    """

    _socket: socket.socket | None = None

    @property
    def sock(self) -> socket.socket | None:
        return self._socket

    @sock.setter
    def sock(self, value: socket.socket | None) -> None:
        self._socket = value
        _attach_current(value)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]  # the connection class's


class DeadlineHTTPConnection(_PageSockets, HTTPConnection):
    """urllib3's connection, its sockets cut at the page deadline."""


class DeadlineHTTPSConnection(_PageSockets, HTTPSConnection):
    """urllib3's TLS connection, its sockets (TCP, then TLS) cut at the page deadline."""


class DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = DeadlineHTTPConnection


class DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = DeadlineHTTPSConnection


class DeadlinePoolManager(PoolManager):
    """urllib3's pool manager, with pools whose connections honour the page deadline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool_classes_by_scheme = {
            "http": DeadlineHTTPConnectionPool,
            "https": DeadlineHTTPSConnectionPool,
        }
