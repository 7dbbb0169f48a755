"""Hostile clients against Gantry served by uvicorn, as in production: streams that hold no
database connection while they wait, bodies refused past their limit before they are read,
and `make run`'s uvicorn (scripts/run.sh) neither believing X-Forwarded-For nor letting open
streams hold its shutdown."""

from __future__ import annotations

import http.client
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from api.services import token_create
from audit.models import AuditEntry
from deployer import services
from designer.services import design_create
from tests.conftest import ROOT, _free_port, served_env
from tests.test_api import spec
from tests.test_deployment_pages import add_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(make_user, team, settings):
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"
    owner = make_user("olivia", team=team, role="admin")
    design = design_create(team=team, user=owner, spec_data=spec("orders-api"))
    target = services.target_sandbox_ensure(team=team)
    deployment = services.deployment_start(design=design, target=target, user=owner)
    return deployment, token_create(user=owner, name="viewer")[1]


def _connections() -> int:
    """PostgreSQL connections to the test database, other than this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


class Viewer(threading.Thread):
    """One open stream over HTTP, recording the events' numbers."""

    def __init__(self, url: str, key: str):
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.seqs: list[int] = []
        self.status: int | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            with requests.get(
                self.url, headers={"Authorization": f"Token {self.key}"}, stream=True, timeout=60
            ) as response:
                self.status = response.status_code
                for line in response.iter_lines(decode_unicode=True):
                    if line and line.startswith("id: "):
                        self.seqs.append(int(line[4:]))
        except requests.RequestException:
            pass
        finally:
            self.ended.set()


def _wait(predicate, deadline: float, what: str) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, what
        time.sleep(0.05)


def test_open_streams_hold_no_database_connection_while_they_wait(web_server, queued):
    if connection.vendor != "postgresql":
        pytest.skip("pg_stat_activity is PostgreSQL's")
    deployment, key = queued
    url = f"{web_server}/api/deployments/{deployment.pk}/events/stream?after=1"
    headers = {"Authorization": f"Token {key}"}
    assert requests.get(f"{web_server}/api/teams/", headers=headers, timeout=10).ok
    _wait(lambda: _connections() == 0, 10, "the web server kept its connection after a request")
    viewers = [Viewer(url, key) for _ in range(8)]
    for viewer in viewers:
        viewer.start()
    _wait(lambda: all(v.status == 200 for v in viewers), 20, "the streams did not open")
    most = 0
    for _ in range(3):
        add_events(deployment, 1)
        seq = deployment.__class__.objects.get(pk=deployment.pk).last_event_seq
        end = time.monotonic() + 10
        while not all(v.seqs and v.seqs[-1] == seq for v in viewers):
            most = max(most, _connections())
            assert time.monotonic() < end, "an event did not reach every stream"
            time.sleep(0.02)
        most = max(most, _connections())
    # Eight viewers took eight connections (and held them) before; now at most a brief read.
    assert most <= 2, f"{most} connections while 8 streams were open"
    assert all(v.seqs == [2, 3, 4] for v in viewers)


def _post_raw(base: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", path)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(body)
    response = conn.getresponse()
    return response.status, response.read()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(web_server, queued):
    _, key = queued
    # 12.5 MiB announced, one kilobyte sent: the answer comes without waiting for the rest.
    status, body = _post_raw(
        web_server,
        "/api/designs/validate/",
        {
            "Authorization": f"Token {key}",
            "Content-Type": "application/json",
            "Content-Length": str(12_500_000),
        },
        b"{" + b" " * 1023,
    )
    assert status == 413
    assert json.loads(body) == {"message": "The request body is larger than 65536 bytes."}
    page_status, page = _post_raw(
        web_server,
        "/designs/new/",
        {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "300000"},
        b"name=x",
    )
    assert page_status == 413 and b"Request too large" in page


def test_a_chunked_body_is_read_no_further_than_the_limit(web_server, queued):
    _, key = queued
    host, port = web_server.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        (
            "POST /api/designs/validate/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {key}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    sent, total = 0, 12_500_000
    answered = False
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
            sock.sendall(chunk)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        answered = True
    reply = sock.recv(65536).decode(errors="replace")
    sock.close()
    assert answered and sent < total, "the server read the whole body"
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "larger than 65536 bytes" in reply


def test_a_chunked_body_under_the_limit_is_read_like_any_other(web_server, queued):
    _, key = queued
    payload = json.dumps({"spec": spec("orders-api")}).encode()

    def chunks():
        for i in range(0, len(payload), 100):
            yield payload[i : i + 100]

    response = requests.post(
        f"{web_server}/api/designs/validate/",
        data=chunks(),  # no Content-Length: Transfer-Encoding: chunked
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True


# --- make run's uvicorn ---------------------------------------------------------------------


def _run_sh_uvicorn(host: str, port: int) -> list[str]:
    """The uvicorn command scripts/run.sh starts, with its host and port filled in."""
    text = (ROOT / "scripts/run.sh").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if "uvicorn gantry.asgi:application" in line]
    argv = line.strip().rstrip("&").split()
    assert argv[0] == "$BIN/uvicorn"
    argv = [a.strip('"').replace("$HOST", host).replace("$PORT", str(port)) for a in argv[1:]]
    return [sys.executable, "-m", "uvicorn", *argv]


@pytest.fixture
def run_sh_server(worker_env, static_root):
    port = _free_port()
    env = served_env(worker_env, static_root)
    log = Path(f"/tmp/gantry-test-run-sh-{port}.log")
    argv = _run_sh_uvicorn("127.0.0.1", port)
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(base + "/healthz", timeout=2).ok
        except requests.ConnectionError:
            return proc.poll() is not None

    _wait(up, 30, "uvicorn did not start")
    assert proc.poll() is None, log.read_text()
    try:
        yield base, proc, argv
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_make_runs_uvicorn_records_the_socket_address_not_x_forwarded_for(run_sh_server):
    base, _, argv = run_sh_server
    assert "--no-proxy-headers" in argv
    response = requests.get(
        base + "/api/designs/",
        headers={"Authorization": "Token gty_forged", "X-Forwarded-For": "203.0.113.66"},
        timeout=10,
    )
    assert response.status_code == 401
    entry = AuditEntry.objects.get(action="auth.failed")
    assert entry.ip == "127.0.0.1"


def test_make_runs_uvicorn_closes_open_streams_on_shutdown(run_sh_server, queued):
    base, proc, argv = run_sh_server
    grace = int(argv[argv.index("--timeout-graceful-shutdown") + 1])
    deployment, key = queued
    viewer = Viewer(f"{base}/api/deployments/{deployment.pk}/events/stream", key)
    viewer.start()
    _wait(lambda: viewer.status == 200, 20, "the stream did not open")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert viewer.ended.wait(grace + 10), "the stream held the shutdown"
    proc.wait(timeout=grace + 10)
    assert time.monotonic() - started < grace + 10
