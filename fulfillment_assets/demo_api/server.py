"""DemoApiServer: the demo API on a real loopback socket, served from a daemon thread."""

from __future__ import annotations

import http.client
import importlib.util
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from fulfillment_assets.demo_api.app import DemoApiState, RequestRecord, build_app
from fulfillment_assets.demo_api.options import DemoApiOptions

# httptools parses faster than h11; both speak keep-alive.
_HTTP = "httptools" if importlib.util.find_spec("httptools") else "h11"


class DemoApiServer:
    """Start with `with DemoApiServer(options, port=0) as api:`; `api.url` is the base URL."""

    def __init__(
        self,
        options: DemoApiOptions | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.app = build_app(options)
        self._state: DemoApiState = self.app.state.demo_api
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def options(self) -> DemoApiOptions:
        return self._state.options

    def configure(self, options: DemoApiOptions | None = None, /, **changes: Any) -> DemoApiOptions:
        """Swap options atomically (all of them if `options` is given); resets fail counters."""
        return self._state.configure(options, **changes)

    @property
    def requests(self) -> list[RequestRecord]:
        return self._state.requests

    def clear_requests(self) -> None:
        self._state.clear_requests()

    @property
    def max_in_flight(self) -> int:
        """The most requests answered at once since the log was last cleared."""
        return self._state.max_in_flight

    def start(self) -> Self:
        """Bind, serve in a daemon thread and wait until /healthz answers."""
        if self._thread is not None:
            raise RuntimeError("DemoApiServer can only be started once")
        # Binding here makes the ephemeral port known before uvicorn starts. IPPROTO_TCP must
        # be explicit: asyncio only sets TCP_NODELAY when sock.proto says TCP, and without it
        # every keep-alive request stalls ~40 ms on Nagle + delayed ACK.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            loop="asyncio",
            http=_HTTP,
            lifespan="off",
            # log_config=None: do not reconfigure the host process's logging.
            log_config=None,
            log_level="warning",
            # The access log would print query strings, which hold the api key.
            access_log=False,
            # Long keep-alive so slow benchmark clients rarely race a server-side close.
            timeout_keep_alive=60,
        )
        # uvicorn 0.54 skips signal handlers outside the main thread by itself.
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"demo-api-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._thread is None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"demo API server thread died while starting on {self.url}")
            conn = http.client.HTTPConnection(self.host, self.port, timeout=1)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            f"demo API did not answer /healthz on {self.url} within {self.startup_timeout}s"
        )

    def stop(self) -> None:
        """Shut down gracefully; force it if a request (e.g. a hang) outlives the grace period."""
        if self._server is None or self._thread is None:
            return
        self._state.closing = True
        self._server.should_exit = True
        self._thread.join(self.shutdown_timeout / 2)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(self.shutdown_timeout / 2)
        if self._thread.is_alive():
            raise RuntimeError(f"demo API on {self.url} did not stop")
        if self._sock is not None:
            self._sock.close()  # uvicorn closes it too; this covers a failed start

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
