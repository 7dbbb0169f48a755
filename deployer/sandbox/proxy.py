"""The sandbox HTTP proxy: AWS's timing and faults in front of the moto server.

Every request is forwarded to moto unchanged (method, path, query, headers including the SigV4
``Authorization``, which moto does not verify, and body) and moto's answer is returned, except
where :mod:`deployer.sandbox.behaviours` makes it behave like AWS, or the fault settings inject
throttling, server errors or lost responses. ``/_sandbox/...`` is the control API and is never
forwarded:

- ``GET /_sandbox/config`` / ``POST /_sandbox/config`` (JSON, partial update, validated)
- ``POST /_sandbox/reset``: forget timelines, counters and fault settings
- ``GET /_sandbox/stats``: requests seen, moto's time per action, faults injected per kind and
  per action, AWS refusals
- ``GET /_sandbox/resources``: the tracked resources and the state AWS would report now
- ``GET /_sandbox/health``: is the proxy up, can it reach moto

Bodies and ``Authorization`` headers are never logged: bodies can carry secrets (Secrets
Manager values, Lambda environment variables).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from deployer.sandbox import protocol
from deployer.sandbox.behaviours import Behaviours, Prepared
from deployer.sandbox.protocol import Call, Reply
from deployer.sandbox.state import ConfigError, SandboxConfig, SandboxState

log = logging.getLogger("deployer.sandbox")

CONTROL_PREFIX = "/_sandbox"
#: Headers that describe one HTTP hop, not the message; never copied across the proxy.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
    }
)
#: Headers a side request to moto needs so moto picks the same service, region and account.
_SIDE_HEADERS = frozenset(
    {"authorization", "x-amz-date", "x-amz-security-token", "host", "user-agent"}
)
#: Lambda zips travel base64 in JSON; 70 MB is AWS's own limit for a direct upload, with margin.
MAX_BODY = 128 * 1024 * 1024


class BadRequest(Exception):
    """The client's HTTP framing is broken; answered with 400 and the connection closed."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    sandbox: SandboxProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver would print a traceback to stderr; a client hanging up is routine, and
        anything else belongs in the log."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("client %s went away: %s", client_address[0], type(exc).__name__)
        else:
            log.exception("sandbox connection from %s failed", client_address[0])


class _Handler(BaseHTTPRequestHandler):
    """One connection; AWS SDKs keep connections alive, so HTTP/1.1 with exact lengths."""

    protocol_version = "HTTP/1.1"
    server_version = "GantrySandbox"
    disable_nagle_algorithm = True
    server: _Server

    def _dispatch(self) -> None:
        self._sent = False
        try:
            self.server.sandbox.handle(self)
        except Exception:
            log.exception("sandbox failed on %s %s", self.command, urlsplit(self.path).path)
            if not self._sent:
                with contextlib.suppress(OSError):
                    self.send_reply(
                        Reply(500, [("Content-Type", "text/plain")], b"sandbox internal error\n")
                    )
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _dispatch

    def read_body(self) -> bytes:
        """The whole request body, de-chunked."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError as exc:
                    raise BadRequest("bad chunk size") from exc
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                total += size
                if total > MAX_BODY:
                    raise BadRequest("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise BadRequest("bad Content-Length") from exc
        if length < 0 or length > MAX_BODY:
            raise BadRequest("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def send_reply(self, reply: Reply) -> None:
        """Write ``reply`` with an exact Content-Length (or drop the connection)."""
        self._sent = True
        if reply.drop:
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:
            reason = ""
        head = [f"{self.protocol_version} {reply.status} {reason}"]
        head += [f"{key}: {value}" for key, value in reply.headers if key.lower() not in HOP_BY_HOP]
        bodiless = reply.status in (204, 304) or 100 <= reply.status < 200
        if not bodiless:
            head.append(f"Content-Length: {len(reply.body)}")
        if self.close_connection:
            head.append("Connection: close")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace")
        if not bodiless and self.command != "HEAD":
            payload += reply.body
        # One write: headers and body in separate small writes meet the client's delayed ACK
        # and cost ~40 ms per call.
        self.wfile.write(payload)
        self.log_request(reply.status, len(reply.body))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Called by send_error before the request line is parsed, so path may not exist yet.
        path = urlsplit(getattr(self, "path", "") or "").path
        log.debug("%s %s -> %s", getattr(self, "command", None), path, code)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # The stdlib would print request lines (with query strings, which can hold presigned
        # credentials) to stderr; keep them out of the normal log.
        log.debug("http: " + format, *args)


class SandboxProxy:
    """The proxy server: ``SandboxProxy(("127.0.0.1", 4566), "http://127.0.0.1:5000")``.

    ``start()`` serves on a background thread (tests), ``serve_forever()`` on the calling one
    (the CLI). Port 0 picks a free port; :attr:`url` says which.
    """

    def __init__(
        self,
        listen: tuple[str, int],
        upstream: str,
        *,
        config: SandboxConfig | None = None,
        state: SandboxState | None = None,
        upstream_timeout: float = 60.0,
    ) -> None:
        split = urlsplit(upstream)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ValueError(f"upstream must be an http(s) URL, got {upstream!r}")
        self.upstream = upstream
        self._upstream_scheme = split.scheme
        self._upstream_host = split.hostname
        self._upstream_port = split.port or (443 if split.scheme == "https" else 80)
        self._upstream_prefix = split.path.rstrip("/")
        self.upstream_timeout = upstream_timeout
        self.state = state or SandboxState(config)
        self.behaviours = Behaviours(self.state)
        protocol.route_rest("lambda", "GET", "/")  # load the Lambda routes before traffic
        self._server = _Server(listen, _Handler)
        self._server.sandbox = self
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> SandboxProxy:
        """Serve on a daemon thread and return at once."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="gantry-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until :meth:`request_stop`; then release the port."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return; safe from a signal handler (it does not wait,
        because ``shutdown()`` blocks until the serving loop notices)."""
        threading.Thread(target=self._server.shutdown, daemon=True).start()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SandboxProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one request -------------------------------------------------------------------------------

    def handle(self, req: _Handler) -> None:
        """Answer one request: control API, or (faulted / simulated) forward to moto."""
        try:
            body = req.read_body()
        except BadRequest as exc:
            req.close_connection = True
            req.send_reply(_json_reply(400, {"error": str(exc)}))
            return
        path = urlsplit(req.path).path
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            req.send_reply(self._control(req.command, path, body))
            return

        call = protocol.identify(req.command, req.path, req.headers, body)
        self.state.count_request(call.label if call.protocol != protocol.UNKNOWN else None)
        latency = self.state.config.latency_ms
        if latency and call.protocol != protocol.UNKNOWN:
            # The emulator's own process simulating a region's round trip (this thread only;
            # every request has a thread of its own). Not the deployer: it never sleeps.
            time.sleep(latency / 1000)
        fault = None
        if call.protocol != protocol.UNKNOWN:
            refusal = self.state.draw_refusal(call.service, call.action)
            if refusal is not None:
                log.warning("sandbox refused %s with %s", call.label, refusal.code)
                req.send_reply(
                    protocol.error_reply(call, refusal.status, refusal.code, refusal.message)
                )
                return
            fault = self.state.draw_fault(call.service, call.action)
        if fault == "throttle":
            log.warning("sandbox injected throttling: %s", call.label)
            req.send_reply(protocol.throttle_reply(call))
            return
        if fault == "error":
            status = self.state.choice((500, 503))
            log.warning("sandbox injected HTTP %s: %s", status, call.label)
            req.send_reply(protocol.server_error_reply(call, status))
            return

        headers = [(k, v) for k, v in req.headers.items()]

        def fetch(
            method: str, fetch_path: str, fetch_body: bytes, content_type: str
        ) -> Reply | None:
            side = [(k, v) for k, v in headers if k.lower() in _SIDE_HEADERS]
            side.append(("Content-Type", content_type))
            try:
                return self._forward(method, fetch_path, side, fetch_body)
            except (OSError, http.client.HTTPException):
                log.debug("sandbox side request to moto failed", exc_info=True)
                return None

        prepared = self._before(call, body, fetch)
        if prepared.reply is not None:
            reply = prepared.reply
        else:
            if prepared.replay is not None:
                reply = prepared.replay
            else:
                try:
                    started = time.monotonic()
                    reply = self._forward(
                        req.command,
                        req.path,
                        headers,
                        body if prepared.body is None else prepared.body,
                    )
                    known = call.protocol != protocol.UNKNOWN
                    self.state.count_forwarded(
                        call.label if known else "", time.monotonic() - started
                    )
                except (OSError, http.client.HTTPException) as exc:
                    log.warning(
                        "sandbox could not reach moto at %s for %s: %s",
                        self.upstream,
                        call.label,
                        type(exc).__name__,
                    )
                    req.send_reply(
                        protocol.error_reply(
                            call,
                            503,
                            "ServiceUnavailable",
                            "The sandbox could not reach its AWS emulator.",
                        )
                    )
                    return
            reply = self._after(call, prepared, reply, fetch)

        if fault == "lose_response":
            reply = self._lose(call, reply)
        req.send_reply(reply)

    def _before(self, call: Call, body: bytes, fetch: Any) -> Prepared:
        try:
            return self.behaviours.before(call, body, fetch)
        except Exception:
            log.exception("sandbox behaviour failed before %s; forwarding as is", call.label)
            return Prepared()

    def _after(self, call: Call, prepared: Prepared, reply: Reply, fetch: Any) -> Reply:
        try:
            return self.behaviours.after(call, prepared, reply, fetch)
        except Exception:
            log.exception("sandbox behaviour failed after %s; answering moto's reply", call.label)
            return reply

    def _lose(self, call: Call, reply: Reply) -> Reply:
        """The call took effect in moto; the caller never learns it."""
        mode = self.state.config.lose_mode
        if mode == "mixed":
            mode = self.state.choice(("drop", "500", "502"))
        log.warning(
            "sandbox lost the response (%s) of %s after moto answered %s",
            mode,
            call.label,
            reply.status,
        )
        if mode == "drop":
            return Reply(0, drop=True)
        if mode == "502":
            return protocol.bad_gateway_reply()
        return protocol.server_error_reply(call, 500)

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Reply:
        """One request to moto; moto's whole answer, read to the end."""
        conn_cls = (
            http.client.HTTPSConnection
            if self._upstream_scheme == "https"
            else http.client.HTTPConnection
        )
        conn = conn_cls(self._upstream_host, self._upstream_port, timeout=self.upstream_timeout)
        try:
            conn.putrequest(
                method,
                self._upstream_prefix + target,
                skip_host=True,
                skip_accept_encoding=True,
            )
            has_host = False
            for key, value in headers:
                lower = key.lower()
                if lower in HOP_BY_HOP:
                    continue
                has_host |= lower == "host"
                conn.putheader(key, value)
            if not has_host:
                conn.putheader("Host", f"{self._upstream_host}:{self._upstream_port}")
            if body or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
            return Reply(response.status, list(response.getheaders()), data)
        finally:
            conn.close()

    # --- control API ----------------------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        route = path[len(CONTROL_PREFIX) :].strip("/")
        routes = {
            "config": ("GET", "POST"),
            "reset": ("POST",),
            "stats": ("GET",),
            "resources": ("GET",),
            "health": ("GET",),
        }
        if route not in routes:
            return _json_reply(
                404,
                {"error": f"no control endpoint {path}", "endpoints": sorted(routes)},
            )
        if method not in routes[route]:
            return _json_reply(
                405,
                {"error": f"{method} not allowed on {path}"},
                [("Allow", ", ".join(routes[route]))],
            )
        if route == "config" and method == "GET":
            return _json_reply(200, self.state.config.as_dict())
        if route == "config":
            try:
                payload = json.loads(body or b"null")
            except ValueError:
                return _json_reply(400, {"error": "the body is not valid JSON"})
            try:
                config = self.state.update_config(payload)
            except ConfigError as exc:
                return _json_reply(400, {"error": str(exc)})
            log.info("sandbox config now %s", json.dumps(config.as_dict(), sort_keys=True))
            return _json_reply(200, config.as_dict())
        if route == "reset":
            config = self.state.reset()
            log.info("sandbox reset")
            return _json_reply(200, {"reset": True, "config": config.as_dict()})
        if route == "stats":
            return _json_reply(200, self.state.stats_dict())
        if route == "resources":
            return _json_reply(200, self.state.resources_dict())
        return _json_reply(
            200, {"ok": True, "upstream": self.upstream, "upstream_ok": self._ping()}
        )

    def _ping(self) -> bool:
        try:
            with socket.create_connection((self._upstream_host, self._upstream_port), timeout=1.0):
                return True
        except OSError:
            return False


def _json_reply(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(
        status,
        [("Content-Type", "application/json"), *(headers or [])],
        json.dumps(payload, indent=2, sort_keys=True).encode() + b"\n",
    )
