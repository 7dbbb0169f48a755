"""The internal API that the API instances serve: HTTPS ``GET /health``, bearer-authenticated.

It is deliberately tiny (standard library only) because it stands for the team's real service:
it proves the path Lambda -> (ALB) -> instance works end to end with TLS and the credential from
Secrets Manager. ``workload/artifacts.py`` embeds this file in the instance's user data; systemd
runs it as an unprivileged user (see ``api_health.sh``). It must run on Amazon Linux 2023's
``/usr/bin/python3`` (3.9), so it uses nothing newer.

Configuration (environment, written by the user data):

- ``GANTRY_API_PORT``: the port to listen on.
- ``GANTRY_API_CERT`` / ``GANTRY_API_KEY``: the self-signed certificate and its key (PEM).
- ``GANTRY_API_CREDENTIAL_FILE``: the file holding the credential (never logged).
- ``GANTRY_API_ANONYMOUS_LIVENESS``: ``1`` behind an ALB. Its health checker cannot send an
  ``Authorization`` header, so ``/health`` *without* the header answers 200 ``{"status": "ok"}``
  (nothing else); a *wrong* credential is still refused. Without it (the single instance the
  Lambda calls directly), a request without the header is refused too.

Answers: 200 ``{"status": "ok", "authenticated": true}`` to the right bearer credential; 401
with ``WWW-Authenticate: Bearer`` otherwise; 404 for any other path.
"""

from __future__ import annotations

import hmac
import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HealthHandler(BaseHTTPRequestHandler):
    server_version = "gantry-api"
    sys_version = ""
    #: Seconds a connection may idle: a stuck client must not hold a thread forever.
    timeout = 10
    #: Set by :func:`serve`.
    credential: bytes = b""
    anonymous_liveness: bool = False

    def _send(self, status: int, payload: dict, extra_headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorized(self) -> bool | None:
        """True for the right bearer credential, False for a wrong one, None when absent."""
        header = self.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Constant-time comparison: the answer time says nothing about the credential.
        return hmac.compare_digest(token.strip().encode(), self.credential)

    def do_GET(self) -> None:  # the name http.server dispatches to
        if self.path.split("?", 1)[0] != "/health":
            self._send(404, {"error": "not found"})
            return
        authorized = self._authorized()
        if authorized:
            self._send(200, {"status": "ok", "authenticated": True})
        elif authorized is None and self.anonymous_liveness:
            self._send(200, {"status": "ok"})
        else:
            self._send(
                401, {"error": "missing or invalid credential"}, {"WWW-Authenticate": "Bearer"}
            )

    do_HEAD = do_GET  # ALB health checks may use HEAD

    def log_message(self, format: str, *args: object) -> None:
        # The default logs the request line only (method, path, status): never headers, so the
        # credential cannot reach the journal.
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class TlsServer(ThreadingHTTPServer):
    """One thread per connection, with the TLS handshake done in that thread.

    Wrapping the listening socket instead would run every handshake inside ``accept()`` on the
    main thread, where one slow or silent client blocks everybody else.
    """

    daemon_threads = True
    tls: ssl.SSLContext

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        request.settimeout(HealthHandler.timeout)
        try:
            tls_request = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            sys.stderr.write(f"{client_address[0]} TLS handshake failed: {exc}\n")
            return
        try:
            self.RequestHandlerClass(tls_request, client_address, self)
        finally:
            # The plain socket was detached by wrap_socket: close the TLS one ourselves.
            tls_request.close()


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read().strip()


def serve() -> None:
    port = int(os.environ["GANTRY_API_PORT"])
    credential = _read(os.environ["GANTRY_API_CREDENTIAL_FILE"])
    if not credential:
        raise SystemExit("the credential file is empty; refusing to serve")
    HealthHandler.credential = credential
    HealthHandler.anonymous_liveness = os.environ.get("GANTRY_API_ANONYMOUS_LIVENESS") == "1"

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.environ["GANTRY_API_CERT"], os.environ["GANTRY_API_KEY"])

    bind = os.environ.get("GANTRY_API_BIND", "0.0.0.0")  # noqa: S104 (SGs restrict callers)
    server = TlsServer((bind, port), HealthHandler)
    server.tls = context
    sys.stderr.write(f"gantry-api listening on https://{bind}:{port}/health\n")
    server.serve_forever()


if __name__ == "__main__":
    serve()
