"""Dagster's webserver and daemon as processes: `dg dev` (or the two services directly) serving
`workspace.yaml` from the repo root on a free loopback port, or the production topology of
`deploy/` (a code server of its own, the webserver and the daemon loading it over gRPC), with a
DAGSTER_HOME and a FULFILLMENT_DATA_DIR of its own, every process's output captured in a log
file, and the whole process tree stopped at the end (SIGINT to each process group, SIGKILL
after a timeout)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from fulfillment_assets_tests.served.cli import (
    BIN_DIR,
    CODE_SERVER_HOST_VARIABLE,
    CODE_SERVER_PORT_VARIABLE,
    DEPLOY_WORKSPACE_YAML,
    REPO_ROOT,
    SHIPPED_DAGSTER_YAML,
    shipped_code_server_command,
    subprocess_environment,
)

HOST = "127.0.0.1"

# What the log must not say: warnings about deprecated, superseded, preview or beta APIs.
DEPRECATION_PATTERN = re.compile(
    r"deprecat|superseded|SupersessionWarning|DeprecationWarning|PreviewWarning|BetaWarning",
    re.IGNORECASE,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# `dg dev` is what the README tells users to run (`dagster dev` is superseded by it in Dagster
# 1.13 and says so in its own log, whatever the project does): webserver and daemon together.
# The daemon is needed even for runs launched through GraphQL: the instance's default run
# coordinator queues runs, and only the daemon dequeues them. "webserver+daemon" starts the two
# services directly, for debugging. "code-server+webserver+daemon" is the production topology of
# deploy/ (docs/deployment.md): the code location served by the command deploy/Dockerfile runs, in
# a process of its own that executes the runs (and evaluates the sensors), and the webserver and
# the daemon loading it through deploy/workspace.yaml's grpc_server entry.
Launcher = Literal["dg dev", "webserver+daemon", "code-server+webserver+daemon"]
CODE_SERVER = "code-server"
# The project's settings, which only the process loading the code reads: in the production
# topology the webserver and the daemon get none of them, as in deploy/docker-compose.yaml.
PROJECT_SETTING_PREFIXES = ("SOURCES__", "DESTINATION__", "FULFILLMENT_")


def free_port() -> int:
    """A port that was free on loopback a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class _Service:
    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path


class DagsterServerError(RuntimeError):
    """The server did not start or stop, a service exited, or a wait ran out of time."""


class DagsterProcesses:
    """The services' processes and logs; `url` is the webserver's URL once started. Starting
    waits, after each service, for `wait_until_ready` (defined by `DagsterServer`)."""

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        launcher: Launcher = "dg dev",
        startup_timeout: float = 120.0,
        stop_timeout: float = 15.0,
        dagster_yaml: Path = SHIPPED_DAGSTER_YAML,
    ) -> None:
        self.workdir = workdir
        self.home = workdir / "dagster_home"
        self.data_dir = workdir / "data"
        self.log_dir = workdir / "logs"
        self.launcher = launcher
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        # The production topology's code server; the other launchers start theirs themselves.
        self.code_server_port = 0
        self._extra_env = dict(env or {})
        self._services: list[_Service] = []
        # The instance settings copied into DAGSTER_HOME (e.g. storage on PostgreSQL).
        self.dagster_yaml = dagster_yaml

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every Dagster process (and, through them, of every run); in the
        production topology, the code server's (the webserver and the daemon get `host_env`)."""
        return subprocess_environment(
            {
                "DAGSTER_HOME": str(self.home),
                "FULFILLMENT_DATA_DIR": str(self.data_dir),
                "RUNTIME__DLTHUB_TELEMETRY": "false",
                **self._extra_env,
            }
        )

    @property
    def host_env(self) -> dict[str, str]:
        """The environment of the production topology's webserver and daemon: Dagster's settings
        and the code server's address; the project's settings reach only the code server."""
        return {
            **{
                name: value
                for name, value in self.env.items()
                if not name.startswith(PROJECT_SETTING_PREFIXES)
            },
            CODE_SERVER_HOST_VARIABLE: HOST,
            CODE_SERVER_PORT_VARIABLE: str(self.code_server_port),
        }

    def _commands(self) -> list[tuple[str, list[str], dict[str, str]]]:
        """Each service's name, command and environment, in the order they start."""
        address = ["-h", HOST, "-p", str(self.port)]
        if self.launcher == "code-server+webserver+daemon":
            # deploy/'s files as shipped: the image's command, the workspace's grpc_server entry.
            workspace = ["-w", str(DEPLOY_WORKSPACE_YAML)]
            return [
                (CODE_SERVER, shipped_code_server_command(HOST, self.code_server_port), self.env),
                (
                    "webserver",
                    [str(BIN_DIR / "dagster-webserver"), *workspace, *address],
                    self.host_env,
                ),
                ("daemon", [str(BIN_DIR / "dagster-daemon"), "run", *workspace], self.host_env),
            ]
        workspace = ["-w", str(REPO_ROOT / "workspace.yaml")]
        if self.launcher == "dg dev":
            return [("dg-dev", [str(BIN_DIR / "dg"), "dev", *workspace, *address], self.env)]
        # The code server log level `dagster dev` uses, so the webserver logs alike.
        webserver = [
            str(BIN_DIR / "dagster-webserver"),
            *workspace,
            *address,
            "--code-server-log-level",
            "warning",
        ]
        daemon = [str(BIN_DIR / "dagster-daemon"), "run", *workspace]
        return [("webserver", webserver, self.env), ("daemon", daemon, self.env)]

    def wait_until_ready(self, service: str) -> None:
        """Until `service`, just started, serves (bounded); `DagsterServer` says how."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start the services and wait until they are ready (bounded)."""
        if self._services:
            raise DagsterServerError("DagsterServer can only be started once")
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.dagster_yaml, self.home / "dagster.yaml")
        self.port = free_port()
        if self.launcher == "code-server+webserver+daemon":
            self.code_server_port = free_port()
        try:
            for name, command, env in self._commands():
                self._services.append(self._spawn(name, command, env))
                # One at a time: two services creating a fresh instance's SQLite storage at
                # once race on it ("table alembic_version already exists"); `dagster dev`
                # creates it before it starts either. Once the webserver serves, it exists.
                # And the webserver and the daemon load the code server: it must serve first.
                self.wait_until_ready(name)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> _Service:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            # A session (and process group) of its own: stop() ends the code servers and run
            # workers these services spawn too, and nothing else.
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return _Service(name, command, env, process, log_path)

    def _service(self, name: str) -> _Service:
        for service in self._services:
            if service.name == name:
                return service
        raise DagsterServerError(f"no service {name}: {[s.name for s in self._services]}")

    def process_group(self, name: str) -> int:
        """The process group of the service `name`: it and every process it spawned."""
        # start_new_session: each service leads a process group of its own, pgid = pid.
        return self._service(name).process.pid

    def kill(self, name: str) -> None:
        """SIGKILL the service's whole process group, as the OOM killer or a lost container would
        end it and every run it executes; returns once the group is gone (bounded)."""
        _stop_groups([self._service(name).process], self.stop_timeout, graceful=False)

    def restart(self, name: str) -> None:
        """Start the service again, its command and environment as before (its port too), and
        wait until it is ready (bounded); its log goes on in the same file."""
        old = self._service(name)
        if old.process.poll() is None:
            raise DagsterServerError(f"{name} is still running: kill it first")
        self._services[self._services.index(old)] = self._spawn(name, old.command, old.env)
        self.wait_until_ready(name)

    def _check_alive(self) -> None:
        for service in self._services:
            if service.process.poll() is not None:
                raise DagsterServerError(
                    f"{service.name} exited with {service.process.returncode}:\n"
                    + self.log_tail(service)
                )

    # --- logs ----------------------------------------------------------------------------------

    def log_lines(self) -> list[str]:
        """Every line the services (and their code servers and runs) printed, colours removed."""
        lines = []
        for service in self._services:
            text = service.log_path.read_text(encoding="utf-8", errors="replace")
            lines += [f"[{service.name}] {_ANSI.sub('', line)}" for line in text.splitlines()]
        return lines

    def deprecation_lines(self) -> list[str]:
        """Log lines that warn about a deprecated, superseded, preview or beta API."""
        return [line for line in self.log_lines() if DEPRECATION_PATTERN.search(line)]

    def log_tail(self, service: _Service | None = None, lines: int = 40) -> str:
        services = [service] if service else self._services
        return "\n".join(
            f"--- {s.log_path} (last {lines} lines) ---\n"
            + "\n".join(s.log_path.read_text(errors="replace").splitlines()[-lines:])
            for s in services
            if s.log_path.exists()
        )

    # --- teardown ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Interrupt every service's process group, then kill what is left of them (bounded)."""
        _stop_groups([service.process for service in self._services], self.stop_timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_groups(
    processes: list[subprocess.Popen[bytes]], timeout: float, *, graceful: bool = True
) -> None:
    """SIGINT (Dagster's graceful shutdown) to the groups these processes lead, then SIGKILL;
    not `graceful`: SIGKILL at once.

    All groups at once: each service takes seconds to shut down its code server.
    """

    def running(process: subprocess.Popen[bytes]) -> bool:
        # poll() first: it reaps an exited leader, which would otherwise keep the group alive.
        return process.poll() is None or _group_alive(process.pid)

    signals = [(signal.SIGINT, timeout)] if graceful else []
    for sig, wait in (*signals, (signal.SIGKILL, 5.0)):
        alive = [process for process in processes if running(process)]
        if not alive:
            break
        for process in alive:
            # start_new_session: each service leads a process group of its own, pgid = pid.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(running(process) for process in alive):
            time.sleep(0.1)
    left = [process.pid for process in processes if running(process)]
    if left:
        raise DagsterServerError(f"process groups {left} did not stop")
