"""Shared fixtures. Real services: the configured database, a real Redis (started here when the
configured one is not reachable), real processes for the CLI."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

hypothesis_settings.register_profile(
    "gantry", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("gantry")

ROOT = Path(__file__).resolve().parent.parent


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The Redis the tests use: the configured one, or a private redis-server started here."""
    from django.conf import settings

    url = urlparse(settings.REDIS_URL)
    if _reachable(url.hostname or "127.0.0.1", url.port or 6379):
        yield settings.REDIS_URL
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail(
            "no Redis is reachable and redis-server is not installed (apt-get install redis-server)"
        )
    port = _free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        if _reachable("127.0.0.1", port):
            break
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def _isolated_cache(redis_url: str, settings) -> Iterator[None]:
    """Each test gets its own cache namespace on the real Redis, so cached previews of one test
    cannot make another pass."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"gantry-test-{os.getpid()}-{time.monotonic_ns()}",
        }
    }
    yield


@pytest.fixture(scope="session", autouse=True)
def _flush_past_the_audit_trigger() -> Iterator[None]:
    """A transactional test ends with Django's flush, a TRUNCATE of every table, which the
    audit table refuses on PostgreSQL (audit migration 0002), as it must in production. The
    test database's superuser lets that flush through with ``session_replication_role =
    replica`` (triggers off, for the flush only: what ``pg_restore --disable-triggers``
    does); the tests themselves run with the trigger on."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with self.connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            flush(self, sql_list)
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, *, team=None, staff: bool = False, role: str = "member"):
        from teams.services import membership_ensure

        user = django_user_model.objects.create_user(
            username=username, password="pw-" + username, is_staff=staff
        )
        if team is not None:
            membership_ensure(team=team, user=user, role=role)
        return user

    return make


@pytest.fixture
def team(db):
    from teams.services import team_ensure

    return team_ensure(name="payments")


@pytest.fixture
def other_team(db):
    from teams.services import team_ensure

    return team_ensure(name="search")


@pytest.fixture
def member(make_user, team):
    return make_user("alice", team=team)


@pytest.fixture
def outsider(make_user, other_team):
    return make_user("mallory", team=other_team)


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@contextlib.contextmanager
def _moto_server(**env: str) -> Iterator[str]:
    """A moto server process over HTTP with ``env`` added to its environment, and its URL."""
    # The project's own emulator (the version pyproject.toml pins), before any on PATH.
    own = os.path.join(os.path.dirname(sys.executable), "moto_server")
    server = own if os.path.exists(own) else shutil.which("moto_server")
    port = _free_port()
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    for _ in range(200):
        if _reachable("127.0.0.1", port):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server over HTTP (the AWS emulator), started for the test session.

    AWS itself cannot exist here; moto is the stand-in, reached over HTTP exactly as a real
    endpoint would be.
    """
    # AWS's managed policies (AWSLambdaVPCAccessExecutionRole...) exist in every account.
    with _moto_server(MOTO_IAM_LOAD_MANAGED_POLICIES="true") as url:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        yield url


@pytest.fixture
def start_moto() -> Iterator[Callable[..., str]]:
    """``start_moto(VAR="value")``: another moto server of the test's own, for the settings
    moto reads from its process environment (``MOTO_LAMBDA_CONCURRENCY_QUOTA``...); stopped
    after the test."""
    with contextlib.ExitStack() as servers:
        yield lambda **env: servers.enter_context(_moto_server(**env))


@pytest.fixture(autouse=True)
def _empty_aws_account(request):
    """Every test that talks to AWS starts from an empty account: resources one test failed
    to clean up (its own failure is reported there) must not fail the next one."""
    if "moto_endpoint" in request.fixturenames:
        import requests

        endpoint = request.getfixturevalue("moto_endpoint")
        requests.post(endpoint + "/moto-api/reset", timeout=30).raise_for_status()
    yield


@pytest.fixture
def aws_context(moto_endpoint):
    """An AwsContext for a fresh deployment identity (of a test installation) against the moto
    server, as the engine makes one for a new deployment."""
    import uuid

    from deployer.aws import client_factory
    from deployer.resources.base import AwsContext

    def make(region: str = "us-east-1", spec_tags: dict | None = None) -> AwsContext:
        identity = str(uuid.uuid4())
        return AwsContext(
            deployment_tag=identity,
            region=region,
            client=client_factory(region=region, endpoint_url=moto_endpoint),
            spec_tags=spec_tags or {},
            installation=f"test-installation-{uuid.uuid4().hex[:8]}",
            name_suffix=identity.replace("-", "")[:8],
            stack_name="lambda-private-api",
        )

    return make


@pytest.fixture(scope="session")
def sandbox_endpoint(moto_endpoint) -> Iterator[str]:
    """The sandbox proxy in front of moto: AWS's pending states and faults, at a fast time scale
    (0.02: a 90 s NAT gateway takes 1.8 s). Tests change its behaviour through /_sandbox/config."""
    import requests

    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deployer.sandbox",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            moto_endpoint,
            "--time-scale",
            "0.02",
            "--eni-hold-seconds",
            "120",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        if _reachable("127.0.0.1", port):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the sandbox proxy did not start")
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        requests.post(url + "/_sandbox/reset", timeout=5)
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def sandbox(sandbox_endpoint):
    """Control of the sandbox: ``sandbox.config(throttle_rate=0.3, ...)``; reset after the test."""
    import requests

    class Sandbox:
        url = sandbox_endpoint

        def config(self, **values):
            response = requests.post(sandbox_endpoint + "/_sandbox/config", json=values, timeout=5)
            response.raise_for_status()
            return response.json()

        def stats(self):
            return requests.get(sandbox_endpoint + "/_sandbox/stats", timeout=5).json()

    requests.post(sandbox_endpoint + "/_sandbox/reset", timeout=5)
    yield Sandbox()
    requests.post(sandbox_endpoint + "/_sandbox/reset", timeout=5)


class WorkerProcess:
    """A real Celery worker in its own process, on a queue of its own, against the test
    database. It can be killed with SIGKILL and started again."""

    def __init__(self, env: dict[str, str], queue: str, concurrency: int = 2, beat: bool = True):
        self.env, self.queue, self.concurrency, self.beat = env, queue, concurrency, beat
        self.proc: subprocess.Popen | None = None
        self.log = open(f"/tmp/gantry-test-worker-{queue}.log", "ab")  # noqa: SIM115

    def start(self) -> None:
        celery = os.path.join(os.path.dirname(sys.executable), "celery")
        self.proc = subprocess.Popen(
            [
                celery,
                "-A",
                "celery_app",
                "worker",
                "-Q",
                self.queue,
                "-c",
                str(self.concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                # Embedded beat: the reaper re-kicks what a killed worker was holding.
                *(["-B", "--schedule", f"/tmp/gantry-test-beat-{self.queue}"] if self.beat else []),
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool children)."""
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the whole worker (SIGSTOP): nothing advances until :meth:`resume`. Keep it
        shorter than GANTRY_REAP_AFTER, or the reaper re-kicks what was frozen."""
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_env(transactional_db, redis_url, sandbox_endpoint, settings):
    """Environment for worker processes, and the test process's Celery pointed at the same
    broker and queue."""
    import uuid

    from celery_app import app

    queue = f"gantry-test-{uuid.uuid4().hex[:8]}"
    broker = redis_url.rsplit("/", 1)[0] + "/14"
    app.conf.broker_url = broker
    app.conf.task_default_queue = queue
    settings.GANTRY_SANDBOX_ENDPOINT = sandbox_endpoint
    from tests.support import subprocess_database_url

    database_url = subprocess_database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker,
        "GANTRY_QUEUE": queue,
        "GANTRY_SANDBOX_ENDPOINT": sandbox_endpoint,
        "GANTRY_POLL_MIN": "0.2",
        "GANTRY_POLL_MAX": "2",
        "GANTRY_REAP_AFTER": "3",
        "GANTRY_REAP_INTERVAL": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    yield {"env": env, "queue": queue}
    app.conf.broker_url = settings.CELERY_BROKER_URL
    app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE


@pytest.fixture
def worker(worker_env):
    w = WorkerProcess(worker_env["env"], worker_env["queue"])
    w.start()
    yield w
    w.stop()


@pytest.fixture
def start_worker(worker_env):
    """``start_worker(**env)`` starts a worker with extra environment, e.g. a reaper that waits
    longer in a test that holds its worker (``pause``) on purpose. Stopped after the test."""
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        w = WorkerProcess({**worker_env["env"], **env}, worker_env["queue"])
        w.start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture(scope="session")
def static_root(tmp_path_factory) -> str:
    """Static files collected once per session, as production serves them (hashed names,
    WhiteNoise, no finders)."""
    root = tmp_path_factory.mktemp("static")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env={
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": "collectstatic-only",
            "STATIC_ROOT": str(root),
        },
        check=True,
    )
    return str(root)


def served_env(worker_env: dict, static_root: str, *, debug: bool = False) -> dict[str, str]:
    """The environment of a web server in a test: production settings (DEBUG off, or on as
    ``make run`` serves it) against the test database, the test's Redis, Celery queue and
    sandbox; only TLS relaxed for loopback."""
    import uuid

    env = {
        **worker_env["env"],
        "DEBUG": "1" if debug else "0",
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": static_root,
        "CACHE_KEY_PREFIX": f"gantry-test-web-{uuid.uuid4().hex[:8]}",
        "LOG_LEVEL": "WARNING",
    }
    # Set in this process for Playwright's sake; the server must keep Django's async checks.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


@pytest.fixture
def web_server(request, worker_env, static_root) -> Iterator[str]:
    """Gantry served as in production: uvicorn running gantry.asgi:application in its own
    process on a free port, with DEBUG off, against the test database, the test's Redis,
    Celery queue and sandbox (the workers' environment). Only TLS is relaxed for loopback.
    A test marked ``debug_server`` gets it with DEBUG on, as ``make run`` serves it."""
    import requests

    debug = request.node.get_closest_marker("debug_server") is not None
    port = _free_port()
    env = served_env(worker_env, static_root, debug=debug)
    log_path = f"/tmp/gantry-test-web-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "gantry.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/login/", timeout=5).status_code == 200:
                    break
            # Not listening yet, or still importing on a loaded machine (the first page takes
            # seconds there): keep asking until the deadline.
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not serve Gantry:\n{Path(log_path).read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (which never downloads a browser).
    Per module: Playwright's event loop lives in this thread only while a browser module runs."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, LAUNCH_ARGS

    # Playwright's sync API runs an event loop in this thread; the ORM calls of a browser test
    # happen between browser steps, never concurrently with them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser, web_server):
    """Open pages on the served app: ``new_page()`` gives a page in a fresh browser context
    (its own cookies: its own user); ``new_page(context=page.context)`` another tab of it.
    ``width``/``height`` size the window; ``timezone_id`` (``"Asia/Kolkata"``) is the viewer's
    time zone, UTC by default."""
    contexts = []

    def make(context=None, *, width: int = 1500, height: int = 1100, **options):
        if context is None:
            context = browser.new_context(
                viewport={"width": width, "height": height}, base_url=web_server, **options
            )
            contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()
