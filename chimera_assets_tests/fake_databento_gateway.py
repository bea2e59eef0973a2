"""A loopback fake of the Databento Historical HTTP gateway, serving SYNTHETIC DBN data.

Runs ``http.server`` on 127.0.0.1 (random port) in a daemon thread. Endpoints (API version 0):

* ``POST /v0/timeseries.get_range`` (form: dataset, start, end, symbols, schema, stype_in,
  stype_out, encoding, compression) -> zstd DBN bytes from :func:`chimera_assets.demo.data.demo_dbn_bytes`
  (``ROOT.v.0`` or bare roots; ohlcv-1m/1h/1d); other schemas/symbol types -> 422 JSON.
* ``GET /v0/metadata.get_dataset_range?dataset=`` -> JSON ``{start, end, schema: {name: {start, end}}}``.
* ``GET|POST /v0/metadata.get_cost`` -> a JSON number (USD), proportional to days x symbols.

Every request must carry HTTP Basic auth with the key as user name (as the real client sends);
otherwise 401 with a JSON ``{"detail": ...}`` body. Faults are programmable per endpoint, consumed
first-in-first-out, one per request: ``"429"`` (with ``Retry-After``), ``"500"``, ``"503"``,
``"reset"`` (TCP RST, no response), ``"hang"`` (no response until ``hang_s`` passes or the server
stops), ``"truncate"`` (announces the full Content-Length, sends half, closes), ``"truncated_dbn"``
(a complete HTTP response whose DBN body is cut), ``"401"``, ``"422"``. Requests are recorded
(without credentials) in ``requests``.

Usage::

    with FakeDatabentoGateway(key="test-key") as gw:
        api = DatabentoApi(key="test-key", gateway=gw.url)
        gw.add_fault("timeseries.get_range", "429", retry_after=1)
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from chimera_assets.demo.data import SUPPORTED_DEMO_SCHEMAS, demo_dbn_bytes

GET_RANGE = "timeseries.get_range"
DATASET_RANGE = "metadata.get_dataset_range"
GET_COST = "metadata.get_cost"
FAULT_KINDS = ("429", "500", "503", "reset", "hang", "truncate", "truncated_dbn", "401", "422")


@dataclass
class Fault:
    kind: str
    retry_after: float | None = 1
    hang_s: float = 30.0


@dataclass
class RecordedRequest:
    """One request as received (credentials are not stored, only whether they were valid)."""

    method: str
    endpoint: str
    params: dict[str, str]
    authorized: bool
    status: int | None = None
    fault: str | None = None
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def _parse_time(value: str) -> dt.datetime:
    """Databento's accepted forms: ISO date, ISO datetime (naive = UTC), or integer ns."""
    value = value.strip()
    if value.lstrip("-").isdigit():
        ns = int(value)
        return dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC) + dt.timedelta(
            microseconds=(ns % 1_000_000_000) // 1000
        )
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


class FakeDatabentoGateway:
    """See the module docstring. ``seed`` drives the synthetic data; ``dataset_start/end`` the
    advertised dataset range."""

    def __init__(
        self,
        key: str = "db-TESTKEY-0123456789abcdef",
        *,
        seed: int = 7,
        dataset_start: dt.datetime = dt.datetime(2010, 6, 6, tzinfo=dt.UTC),
        dataset_end: dt.datetime | None = None,
    ):
        self.key = key
        self.seed = seed
        self.dataset_start = dataset_start
        self.dataset_end = dataset_end or dt.datetime(2025, 12, 16, tzinfo=dt.UTC)
        self.requests: list[RecordedRequest] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("gateway not started")
        host, port = self._server.server_address[:2]
        return f"http://127.0.0.1:{port}"

    def start(self) -> FakeDatabentoGateway:
        gateway = self

        class Handler(_Handler):
            gw = gateway

        self._stop.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval makes shutdown() quick between tests.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-databento",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeDatabentoGateway:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- programming -----------------------------------------------------------------------------

    def add_fault(
        self, endpoint: str, kind: str, *, retry_after: float | None = 1, hang_s: float = 30.0
    ) -> None:
        """Queue a fault for the next request to ``endpoint`` (e.g. ``"timeseries.get_range"``)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self._faults.setdefault(endpoint, deque()).append(Fault(kind, retry_after, hang_s))

    def _next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            q = self._faults.get(endpoint)
            return q.popleft() if q else None

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)


class _Handler(BaseHTTPRequestHandler):
    gw: FakeDatabentoGateway
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - silence stderr access log
        return

    # -- helpers -----------------------------------------------------------------------------------

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, _pw = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.gw.key

    def _send(
        self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status: int, payload, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def _reset(self) -> None:
        # SO_LINGER with zero timeout makes close() send a TCP RST: "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _params(self) -> dict[str, str]:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            params.update(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        return params

    # -- dispatch ----------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        endpoint = path.removeprefix("/v0/")
        params = self._params()
        rec = RecordedRequest(method, endpoint, params, self._authorized())
        self.gw._record(rec)
        if not path.startswith("/v0/"):
            rec.status = 404
            return self._json(404, {"detail": f"unknown path {path}"})
        if not rec.authorized:
            rec.status = 401
            return self._json(401, {"detail": "Authentication failed."})
        fault = self.gw._next_fault(endpoint)
        if fault is not None:
            rec.fault = fault.kind
            if self._apply_fault(fault, rec, endpoint, params):
                return
        try:
            if endpoint == GET_RANGE and method == "POST":
                return self._get_range(params, rec)
            if endpoint == DATASET_RANGE and method == "GET":
                return self._dataset_range(params, rec)
            if endpoint == GET_COST:
                return self._get_cost(params, rec)
        except (ValueError, KeyError) as exc:
            rec.status = 422
            return self._json(422, {"detail": f"invalid request: {exc}"})
        rec.status = 404
        return self._json(404, {"detail": f"unknown endpoint {method} {endpoint}"})

    def _apply_fault(self, fault: Fault, rec: RecordedRequest, endpoint: str, params: dict) -> bool:
        """Act out a fault; True when the request is fully handled by it."""
        kind = fault.kind
        if kind == "429":
            rec.status = 429
            headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
            self._json(429, {"detail": "Too many requests."}, headers=headers)
        elif kind in ("500", "503"):
            rec.status = int(kind)
            self._json(int(kind), {"detail": "Internal error (fake)."})
        elif kind == "401":
            rec.status = 401
            self._json(401, {"detail": "Authentication failed."})
        elif kind == "422":
            rec.status = 422
            self._json(422, {"detail": "Unprocessable request (fake)."})
        elif kind == "reset":
            self._reset()
        elif kind == "hang":
            self.gw._stop.wait(fault.hang_s)
            self.close_connection = True
        elif kind == "truncate":
            body = self._body_for(endpoint, params)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            rec.status = 200
        elif kind == "truncated_dbn":
            body = self._body_for(endpoint, params)
            rec.status = 200
            self._send(200, body[: max(1, len(body) * 2 // 3)], "application/octet-stream")
        return True

    def _body_for(self, endpoint: str, params: dict) -> bytes:
        if endpoint == GET_RANGE:
            return self._range_bytes(params)
        return json.dumps({"detail": "x" * 2048}).encode()

    # -- endpoints ---------------------------------------------------------------------------------

    def _range_bytes(self, params: dict) -> bytes:
        if params.get("dataset") != "GLBX.MDP3":
            raise ValueError(f"dataset {params.get('dataset')!r} not served by the fake (GLBX.MDP3 only)")
        schema = params.get("schema", "")
        if schema not in SUPPORTED_DEMO_SCHEMAS:
            raise ValueError(
                f"schema {schema!r} not served by the fake ({', '.join(SUPPORTED_DEMO_SCHEMAS)})"
            )
        if params.get("stype_in", "raw_symbol") != "continuous":
            raise ValueError("the fake serves stype_in=continuous only")
        symbols = [s for s in params.get("symbols", "").split(",") if s]
        if not symbols:
            raise ValueError("symbols is required")
        start = _parse_time(params["start"])
        end = _parse_time(params["end"]) if params.get("end") else start + dt.timedelta(days=1)
        return demo_dbn_bytes(symbols, start, end, schema, self.gw.seed)

    def _get_range(self, params: dict, rec: RecordedRequest) -> None:
        body = self._range_bytes(params)
        rec.status = 200
        self._send(200, body, "application/octet-stream")

    def _dataset_range(self, params: dict, rec: RecordedRequest) -> None:
        if params.get("dataset") != "GLBX.MDP3":
            raise ValueError(f"unknown dataset {params.get('dataset')!r}")
        iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")  # noqa: E731
        lo, hi = iso(self.gw.dataset_start), iso(self.gw.dataset_end)
        schemas = {
            s: {"start": lo, "end": hi}
            for s in ("ohlcv-1m", "ohlcv-1h", "ohlcv-1d", "statistics", "definition")
        }
        rec.status = 200
        self._json(200, {"start": lo, "end": hi, "schema": schemas})

    def _get_cost(self, params: dict, rec: RecordedRequest) -> None:
        start = _parse_time(params["start"])
        end = _parse_time(params["end"]) if params.get("end") else start + dt.timedelta(days=1)
        n_sym = max(1, len([s for s in params.get("symbols", "").split(",") if s]))
        per_day = {"ohlcv-1m": 0.05, "ohlcv-1h": 0.002, "ohlcv-1d": 0.0001}.get(
            params.get("schema", ""), 0.01
        )
        days = max(0.0, (end - start).total_seconds() / 86_400)
        rec.status = 200
        self._json(200, round(days * n_sym * per_day, 6))


try:
    import pytest
except ImportError:  # pragma: no cover - the gateway is usable without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture
    def fake_gateway():
        """A started :class:`FakeDatabentoGateway` (stopped after the test). Import this fixture
        into a test module (``from chimera_assets_tests.fake_databento_gateway import fake_gateway``)."""
        gw = FakeDatabentoGateway().start()
        try:
            yield gw
        finally:
            gw.stop()
