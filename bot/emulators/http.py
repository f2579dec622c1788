"""Shared base for the offline service emulators (Slack, X, ...).

An emulator is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 served from a
daemon thread. Subclasses implement :meth:`EmulatorServer.handle`, turning a
:class:`Request` into a :class:`Response`. Faults (errors, rate limits, slow or
dropped connections) are queued in a :class:`FaultQueue` and consumed FIFO; what
they answer is decided in :mod:`bot.emulators.base`. ``inflight`` counts the
requests being answered (the fault trial waits for quiet with it).
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
T = TypeVar("T")


@dataclass
class Request:
    """One HTTP request as the emulator saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    def multipart(self) -> dict[str, Part]:
        """The parts of a ``multipart/form-data`` body by field name (empty if it is not)."""
        if self.content_type != "multipart/form-data":
            return {}
        head = f"Content-Type: {self.headers.get('content-type', '')}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        parts: dict[str, Part] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                payload = part.get_payload(decode=True)
                parts[name] = Part(part.get_filename(), part.get_content_type(),
                                   payload if isinstance(payload, bytes) else b"")
        return parts


@dataclass(frozen=True)
class Part:
    """One field of a multipart body."""

    filename: str | None
    content_type: str
    data: bytes

    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass
class Response:
    """What to answer. ``drop`` closes the socket without any answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response with ``Content-Type: application/json; charset=utf-8``."""
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return Response(status, body, {"Content-Type": JSON_CONTENT_TYPE, **(headers or {})})


def text_response(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status, text.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
    )


@dataclass
class Fault:
    """A programmed misbehaviour: ``kind`` plus its parameters, used ``remaining`` more times."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    remaining: int = 1


class FaultQueue:
    """Thread-safe FIFO of faults per key (an endpoint or Web API method); ``"*"`` matches any."""

    WILDCARD = "*"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, key: str, kind: str, times: int = 1, **params: Any) -> Fault:
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = Fault(kind, dict(params), times)
        with self._lock:
            self._queues.setdefault(key, deque()).append(fault)
        return fault

    def take(self, key: str, accept: Callable[[Fault], bool] | None = None) -> Fault | None:
        """Consume one use of the first fault queued for ``key`` (then ``"*"``) that ``accept``s."""
        with self._lock:
            for queue_key in (key, self.WILDCARD):
                queue = self._queues.get(queue_key)
                if not queue:
                    continue
                for fault in queue:
                    if accept is None or accept(fault):
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            queue.remove(fault)
                        return Fault(fault.kind, dict(fault.params), 1)
        return None

    def pending(self, key: str | None = None) -> list[Fault]:
        with self._lock:
            keys = [key] if key is not None else list(self._queues)
            return [f for k in keys for f in self._queues.get(k, ())]

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()


def apply_delay(fault: Fault) -> None:
    if fault.kind == "slow":
        time.sleep(float(fault.params.get("delay", fault.params.get("seconds", 1.0))))


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout:.1f}s")
        time.sleep(interval)


class Inflight:
    """How many requests the emulator is still answering (call it), and for how long it
    has answered none (:meth:`quiet_for`): counted from the moment its server accepts a
    connection (a request still being read, or waiting for its thread on a loaded
    machine, is in flight too) until that request's thread is done."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0
        self.idle_since = time.monotonic()

    def __call__(self) -> int:
        return self.n

    def begin(self) -> None:
        with self.lock:
            self.n += 1

    def end(self) -> None:
        with self.lock:
            self.n -= 1
            self.idle_since = time.monotonic()

    def quiet_for(self) -> float:
        with self.lock:
            return 0.0 if self.n else time.monotonic() - self.idle_since


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: EmulatorServer

    def process_request(self, request: Any, client_address: Any) -> None:
        self.emulator.inflight.begin()
        try:
            super().process_request(request, client_address)  # starts the thread that serves it
        except BaseException:
            self.emulator.inflight.end()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.emulator.inflight.end()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so a stopped emulator leaves no
    # kept-alive sockets behind and "drop" always reaches the client as such.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query={k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.emulator.handle(request)
        except Exception:
            log.exception("emulator failed on %s %s", request.method, request.path)
            response = json_response({"error": "emulator_exception"}, 500)
        self.server.emulator.exchanges.append((request, response))
        if response.delay:
            time.sleep(response.delay)
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        # A client that gave up (timed out) has closed its end: nothing to tell it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class EmulatorServer:
    """Runs :meth:`handle` behind a local HTTP server; usable as a context manager."""

    host = "127.0.0.1"

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.faults = FaultQueue()
        # every request and the answer given, for checking both against the network's
        # published spec (tests/spec_check.py); the latest 5,000
        self.exchanges: deque[tuple[Request, Response]] = deque(maxlen=5000)
        self.inflight = Inflight()

    # lifecycle -------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("emulator is not running")
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        if self._httpd is None:
            httpd = _Server((self.host, self._requested_port), _Handler)
            httpd.emulator = self
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{httpd.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._httpd, self._thread = httpd, thread
        return self.root_url

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # behaviour ---------------------------------------------------------------
    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        return wait_for(predicate, timeout)
