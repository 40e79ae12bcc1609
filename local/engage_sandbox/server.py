"""The sandbox's HTTP side: a threading HTTP/1.1 server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import bulk, engage_api
from .rates import peak_per_second, sustained_rate
from .state import AFTER_KINDS, BEFORE_KINDS, Fault, SandboxError, SandboxState

LOOPBACK = "127.0.0.1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, state: SandboxState):
        self.state = state
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Engage's front end does
    server_version = "EngageSandbox/1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature is the stdlib's
        pass  # the request log is the record; stderr noise helps no one

    # --- plumbing -----------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: object = None, headers: dict | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self) -> None:
        """Close the connection with no answer at all."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        started = (time.monotonic(), time.time())  # the request line and headers are in: it has arrived
        raw = self._read_body()
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            if url.path.startswith("/_sandbox/"):
                self._admin(method, url.path, query, raw)
            else:
                self._engage(method, url.path, query, raw, started)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # --- Engage -------------------------------------------------------------
    def _engage(self, method: str, path: str, query: dict, raw: bytes, started: tuple[float, float]) -> None:
        state = self.server.state
        route, contact_id, version = engage_api.route_of(method, path)
        entry = {
            "time": started[1],  # kept for older readers; the same as `started`
            "started": started[1],
            "monotonic": started[0],
            "version": version,
            "method": method,
            "path": path,
            "query": query,
            "headers": dict(self.headers.items()),
            "body": raw.decode("utf-8", "replace"),
            "route": route or "unknown",
            "contactId": contact_id,
            "status": None,  # what Engage's logic answered, whatever a fault made the client see
            "applied": False,  # whether the call changed a contact
        }
        state.log_request(entry)
        if route is None or version is None:  # (a route always has a version)
            return self._send(404, {"message": f"No HTTP resource was found that matches {path}"})
        if route == "method":
            return self._send(405, {"message": f"The requested resource does not support {method}"})

        fired = state.draw_faults(route, contact_id, version)
        delay = (state.latency_ms + sum(f.ms for f in fired if f.kind == "latency")) / 1000
        if delay:
            time.sleep(delay)
        before = next((f for f in fired if f.kind in BEFORE_KINDS), None)
        after = next((f for f in fired if f.kind in AFTER_KINDS), None)
        if before is not None:
            return self._fault(before, route)

        api_key = self.headers.get("apikey") or ""
        if api_key not in state.api_keys:
            return self._send(401, {"message": "Authorization has been denied for this request."})
        if state.over_rate_limit(api_key, now=started[0]):
            retry = {"Retry-After": state.retry_after} if state.retry_after is not None else None
            return self._send(429, {"message": "API calls quota exceeded"}, retry)
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return self._send(500, {"message": "An error has occurred."})

        body, problem = engage_api.parse_body(raw)
        headers = {name.lower(): value for name, value in self.headers.items()}
        call = engage_api.Call(version=version, contact_id=contact_id or "", body=body, query=query, headers=headers)
        bulk.settle(state)  # a bulk batch whose time has come is processed before this call sees Engage
        status, answer = problem or {**engage_api.HANDLERS, **bulk.HANDLERS}[route](state, call)
        with state.lock:  # what Engage did, whatever the client is told below
            entry["status"] = status
            entry["applied"] = status < 400 and route in engage_api.WRITES
            entry["errorCode"] = answer.get("errorCode") if isinstance(answer, dict) else None
            if route == "create" and status == 201 and isinstance(answer, dict):
                entry["contactId"] = answer["id"]
        if after is not None and status < 400:
            return self._fault(after, route)
        self._send(status, answer)

    def _fault(self, fault: Fault, route: str) -> None:
        if fault.kind in ("drop", "apply_then_drop"):
            return self._drop()
        if fault.kind in ("hang", "apply_then_hang"):
            self.server.state.shutdown.wait(fault.seconds)
            return self._drop()
        if fault.body is not None:
            body = fault.body
        elif fault.code is not None:
            _, body = engage_api.error(fault.status, fault.code, f"{fault.code} (sandbox fault on {route})")
        else:
            body = {"message": "The service is unavailable (sandbox fault)", "statusCode": fault.status}
        self._send(fault.status, body, fault.headers)

    # --- admin --------------------------------------------------------------
    def _admin(self, method: str, path: str, query: dict, raw: bytes) -> None:
        state = self.server.state
        try:
            data = json.loads(raw) if raw.strip() else None
        except ValueError:
            return self._send(400, {"error": "the body is not JSON"})
        try:
            key = (method, path.rstrip("/"))
            if key == ("POST", "/_sandbox/contacts"):
                return self._send(201, {"id": state.add_contact(data or {})})
            if key == ("GET", "/_sandbox/contacts"):
                return self._send(200, state.list_contacts())
            if method == "GET" and path.startswith("/_sandbox/contacts/"):
                contact = state.get_contact(path.rsplit("/", 1)[1])
                return self._send(200, contact) if contact else self._send(404, {"error": "no such contact"})
            if key == ("GET", "/_sandbox/requests"):
                return self._send(200, state.request_log(query.get("route"), query.get("version")))
            if key == ("GET", "/_sandbox/rates"):
                log = state.request_log(query.get("route"), query.get("version"))
                return self._send(
                    200,
                    {"requests": len(log), "peakPerSecond": peak_per_second(log), "sustainedRate": sustained_rate(log)},
                )
            if key == ("POST", "/_sandbox/faults"):
                items = data.get("faults", []) if isinstance(data, dict) and "faults" in data else data
                items = items if isinstance(items, list) else [items]
                state.add_faults([Fault.from_json(item) for item in items])
                return self._send(200, [f.to_json() for f in state.faults])
            if key == ("GET", "/_sandbox/faults"):
                return self._send(200, [f.to_json() for f in state.faults])
            if key == ("DELETE", "/_sandbox/faults"):
                state.clear_faults()
                return self._send(200, [])
            if key == ("POST", "/_sandbox/reset"):
                state.reset(demo=bool(isinstance(data, dict) and data.get("demo")))
                return self._send(200, {"reset": True})
            if key == ("POST", "/_sandbox/config"):
                return self._send(200, state.configure(data))
            if key == ("GET", "/_sandbox/config"):
                return self._send(200, state.config())
            if key == ("GET", "/_sandbox/stats"):
                return self._send(200, state.stats())
        except (SandboxError, TypeError, ValueError) as exc:
            return self._send(400, {"error": str(exc)})
        self._send(404, {"error": f"no sandbox route {method} {path}"})


class EngageSandbox:
    """The sandbox as an object: start it, use `.url`, stop it (or use `with`)."""

    def __init__(self, port: int = 0, host: str = LOOPBACK, **state_options):
        if host not in (LOOPBACK, "localhost"):
            raise ValueError("the sandbox binds the loopback address only")
        self.state = SandboxState(**state_options)
        self._server = _Server((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> EngageSandbox:
        self._thread = threading.Thread(target=self._server.serve_forever, name="engage-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.shutdown.set()  # releases hanging requests
        if self._thread is not None:  # socketserver's shutdown waits for a serving loop: only if one was started
            self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> EngageSandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    from local import not_a_command

    not_a_command(__spec__.name, __doc__, "make sandbox (python -m local.engage_sandbox), of which this is a part")
