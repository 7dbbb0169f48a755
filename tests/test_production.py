"""The production stack: docker-compose.yml, .env.example, the deploy checks, the health probes
and the JSON logs, against the real things (Django's test client and subprocesses, the test
database, Redis, a real Celery worker)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import io
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml
from django.test import Client

from tests.conftest import WorkerProcess, _free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
SANDBOX_PROGRAMS = {"moto_server", "deployer.sandbox"}


# --- docker-compose.yml ---------------------------------------------------------------------


def _resolve(text: str) -> str:
    """Compose's interpolation as the commands use it: ``${VAR:-default}`` is the default."""
    text = re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", text)
    return text.replace("$$", "$")


def _argv(command: list[str] | str) -> list[str]:
    if isinstance(command, str):
        return shlex.split(_resolve(command))
    return [_resolve(str(part)) for part in command]


def _healthcheck_commands(test: list[str] | str) -> list[list[str]]:
    """The commands a healthcheck runs: ``CMD`` is an argv, ``CMD-SHELL`` a shell line, split
    at its operators."""
    if isinstance(test, str) or test[0] == "CMD-SHELL":
        line = test if isinstance(test, str) else test[1]
        commands: list[list[str]] = [[]]
        for token in shlex.split(_resolve(line)):
            if token in {"&&", "||", ";", "|"}:
                commands.append([])
            else:
                commands[-1].append(token)
        return [c for c in commands if c]
    assert test[0] == "CMD", f"healthcheck test {test!r} is neither CMD nor CMD-SHELL"
    return [_argv(test[1:])]


def _click_options(command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _unknown_options(args: list[str], known: set[str]) -> list[str]:
    return [
        arg.split("=", 1)[0]
        for arg in args
        if arg.startswith("-") and arg.split("=", 1)[0] not in known | {"--help"}
    ]


def _command_problems(argv: list[str]) -> list[str]:
    """What in a command of Gantry's image does not exist in the repository (or is misspelt):
    the program, the module, the management command, the Celery app and its options."""
    program, args = argv[0], argv[1:]
    if program == "python":
        if args[:1] == ["manage.py"]:
            from django.core.management import CommandError, get_commands, load_command_class

            if not (ROOT / "manage.py").is_file():
                return ["manage.py is missing"]
            name = args[1]
            if name not in get_commands():
                return [f"manage.py has no command {name!r}"]
            parser = load_command_class(get_commands()[name], name).create_parser("manage.py", name)
            try:
                parser.parse_args(args[2:])
            except CommandError as exc:
                return [f"manage.py {name}: {exc}"]
            return []
        if args[:1] == ["-m"]:
            module = args[1]
            spec = importlib.util.find_spec(module)
            if spec is None or not str(spec.origin or "").startswith(str(ROOT)):
                return [f"python -m {module}: no such module in the repository"]
            if spec.submodule_search_locations is not None:
                if importlib.util.find_spec(f"{module}.__main__") is None:
                    return [f"python -m {module}: the package has no __main__"]
                main = importlib.import_module(f"{module}.__main__")
                if hasattr(main, "build_parser"):
                    try:
                        main.build_parser().parse_args(args[2:])
                    except SystemExit:
                        return [f"python -m {module}: its arguments {args[2:]} are rejected"]
            return []
        if args[:1] == ["-c"]:
            try:
                compile(args[1], "<healthcheck>", "exec")
            except SyntaxError as exc:
                return [f"python -c: {exc}"]
            return []
        return [f"python {args}: neither manage.py, -m nor -c"]
    if program == "celery":
        from celery import Celery
        from celery.app.control import Inspect
        from celery.bin.celery import celery as celery_cli

        if args[:1] != ["-A"]:
            return ["celery without -A <app>"]
        module, sub, rest = args[1], args[2], args[3:]
        if importlib.util.find_spec(module) is None:
            return [f"celery -A {module}: no such module"]
        if not isinstance(getattr(importlib.import_module(module), "app", None), Celery):
            return [f"celery -A {module}: the module has no Celery `app`"]
        if sub not in celery_cli.commands:
            return [f"celery has no command {sub!r}"]
        problems = [
            f"celery {sub}: no option {opt}"
            for opt in _unknown_options(rest, _click_options(celery_cli.commands[sub]))
        ]
        if sub == "inspect" and not callable(getattr(Inspect, rest[0], None)):
            problems.append(f"celery inspect has no action {rest[0]!r}")
        return problems
    if program == "uvicorn":
        from uvicorn.main import main as uvicorn_cli

        module, _, attribute = args[0].partition(":")
        if importlib.util.find_spec(module) is None:
            return [f"uvicorn {args[0]}: no such module"]
        if not hasattr(importlib.import_module(module), attribute):
            return [f"uvicorn {args[0]}: the module has no {attribute!r}"]
        return [
            f"uvicorn: no option {opt}"
            for opt in _unknown_options(args[1:], _click_options(uvicorn_cli))
        ]
    if program == "moto_server":
        # Installed in the image by the `sandbox` extra.
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        if not any(
            dep.startswith("moto[server]") for dep in extras["optional-dependencies"]["sandbox"]
        ):
            return ["moto_server: the sandbox extra does not install moto[server]"]
        if shutil.which("moto_server", path=str(Path(sys.executable).parent)) is None:
            return ["moto_server is not installed"]
        return []
    if program.startswith("scripts/") or program.endswith(".sh"):
        path = ROOT / program
        return [] if path.is_file() and os.access(path, os.X_OK) else [f"{program} is missing"]
    return [f"unknown program {program!r}: teach this test what it is"]


def _built_here(service: dict) -> bool:
    return "build" in service


def test_every_command_of_gantrys_image_names_something_that_exists():
    problems = []
    for name, service in SERVICES.items():
        if not _built_here(service):
            continue  # postgres, redis: the official images' own commands
        commands = [_argv(service["command"])] if "command" in service else []
        if "healthcheck" in service:
            commands += _healthcheck_commands(service["healthcheck"]["test"])
        for argv in commands:
            problems += [f"{name}: {problem}" for problem in _command_problems(argv)]
    # The image's own default command (docker run without one).
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile, flags=re.MULTILINE)
    problems += [f"Dockerfile CMD: {problem}" for problem in _command_problems(json.loads(cmd))]
    assert problems == []


def test_the_image_gets_the_code_and_never_the_secrets():
    """.dockerignore keeps `.env` (secrets), `.git` and the virtualenv out of the image, and
    nothing the commands run."""
    from fnmatch import fnmatch

    from django.conf import settings

    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch(path, pattern.removeprefix("**/")) for pattern in patterns)

    assert all(ignored(path) for path in (".env", ".git", ".venv", "db.sqlite3"))
    needed = {"manage.py", "celery_app.py", "pyproject.toml", "gantry", "templates", "static"}
    needed |= {app.split(".")[0] for app in settings.INSTALLED_APPS if (ROOT / app).is_dir()}
    assert {"deployer", "designer", "teams"} <= needed
    assert [path for path in sorted(needed) if ignored(path)] == []


def test_the_command_checker_catches_what_does_not_exist():
    """The test above can fail."""
    assert _command_problems(["python", "-m", "deployer.no_such_module"])
    assert _command_problems(["python", "manage.py", "no_such_command"])
    assert _command_problems(["celery", "-A", "celery_app", "worker", "--concurency", "2"])
    assert _command_problems(["uvicorn", "gantry.asgi:no_such_app"])
    assert _command_problems(["python", "-m", "deployer.sandbox", "--time-scale", "fast"])
    assert _command_problems(["gunicorn", "gantry.wsgi"])


def test_web_health_check_probes_healthz():
    from gantry.health import PROBES

    (argv,) = _healthcheck_commands(SERVICES["web"]["healthcheck"]["test"])
    urls = re.findall(r"https?://[^'\"\s]+", " ".join(argv))
    assert [re.sub(r"^https?://[^/]+", "", url) for url in urls] == ["/healthz"]
    assert "/healthz" in PROBES


def test_services_and_what_they_run():
    def runs(name: str) -> str:
        return " ".join(_argv(SERVICES[name]["command"]))

    assert runs("web").startswith("uvicorn gantry.asgi:application")  # ASGI, for the streams
    assert runs("worker").startswith("celery -A celery_app worker")
    assert runs("beat").startswith("celery -A celery_app beat")
    assert runs("migrate") == "scripts/migrate.sh"  # db_roles, then migrate as the owner
    migrate = (ROOT / "scripts/migrate.sh").read_text().splitlines()
    assert [line for line in migrate if line.startswith(("python", "exec"))] == [
        "python manage.py db_roles",
        "exec python manage.py migrate --noinput",
    ]
    # The application connects as the role that may not rewrite the audit trail.
    assert "//gantry_app:" in SERVICES["web"]["environment"]["DATABASE_URL"]
    assert "//gantry_owner:" in SERVICES["migrate"]["environment"]["DATABASE_URL"]
    assert SERVICES["db"]["image"].startswith("postgres:")
    assert SERVICES["redis"]["image"].startswith("redis:")


def _one_shot() -> set[str]:
    """Services others wait for to exit successfully."""
    return {
        dependency
        for service in SERVICES.values()
        for dependency, how in (service.get("depends_on") or {}).items()
        if isinstance(how, dict) and how.get("condition") == "service_completed_successfully"
    }


def test_every_long_running_service_has_a_healthcheck_and_one_shots_are_not_restarted():
    assert _one_shot() == {"migrate"}
    for name, service in SERVICES.items():
        if name in _one_shot():
            assert "healthcheck" not in service
            # "unless-stopped" would run the migration again every time it exits.
            assert service.get("restart", "no") in {"no", "on-failure"}, name
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
            assert not service["healthcheck"].get("disable"), name


def test_migrations_run_once_before_web_worker_and_beat():
    for name in ("web", "worker", "beat"):
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["db"] == {"condition": "service_healthy"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
    assert SERVICES["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}


def test_the_emulator_runs_only_under_the_sandbox_profile():
    def is_emulator(service: dict) -> bool:
        argv = _argv(service.get("command", []))
        return bool(argv) and (
            argv[0] in SANDBOX_PROGRAMS
            or (argv[:2] == ["python", "-m"] and argv[2] in SANDBOX_PROGRAMS)
        )

    emulators = {name for name, service in SERVICES.items() if is_emulator(service)}
    assert emulators == {"aws-emulator", "aws-sandbox"}
    for name, service in SERVICES.items():
        if name in emulators:
            assert service.get("profiles") == ["sandbox"], name
        else:
            # Started by a plain `docker compose up`, and needing nothing from the sandbox.
            assert not service.get("profiles"), name
            assert not set(service.get("depends_on") or {}) & emulators, name


# --- .env.example -----------------------------------------------------------------------------

#: Code that runs in AWS, not in Gantry's processes: the Lambda's handler and the API instance's
#: server read variables the deployer sets for them, not an operator.
_RUNS_IN_AWS = ("workload/lambda_src/", "workload/userdata/")
#: Read by libraries from the process environment (boto3's credential chain and region).
_READ_BY_LIBRARIES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}


def _python_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d not in {"tests", "bench", "node_modules", "migrations", "staticfiles", "build"}
            and not d.endswith(".egg-info")
        ]
        for file in files:
            if file.endswith(".py"):
                yield Path(folder, file)


def _variables_read_by_gantry() -> dict[str, str]:
    """Every environment variable Gantry's code reads by name (``os.environ.get``,
    ``os.environ[...]``, ``os.getenv``, ``env_bool``/``env_list``/``_env_float``...)."""
    found: dict[str, str] = {}
    for path in _python_files():
        where = path.relative_to(ROOT).as_posix()
        if where.startswith(_RUNS_IN_AWS):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=where)):
            key = None
            if isinstance(node, ast.Call) and node.args:
                function = ast.unparse(node.func)
                if function in {"os.environ.get", "os.getenv"} or re.fullmatch(
                    r"_?env_\w+", function
                ):
                    key = node.args[0]
            elif (
                isinstance(node, ast.Subscript)
                and isinstance(node.ctx, ast.Load)
                and ast.unparse(node.value) == "os.environ"
            ):
                key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found.setdefault(key.value, f"{where}:{node.lineno}")
    return found


def _variables_of_compose() -> dict[str, str]:
    """Variables docker-compose.yml interpolates, and those it sets for Gantry's processes."""
    text = (ROOT / "docker-compose.yml").read_text()
    found = {name: "docker-compose.yml" for name in re.findall(r"(?<!\$)\$\{?([A-Za-z_]\w*)", text)}
    for name, service in SERVICES.items():
        if "env_file" in service:
            for variable in service.get("environment") or {}:
                found.setdefault(variable, f"docker-compose.yml: {name}")
    return found


def _documented() -> set[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {m.group(1) for line in lines if (m := re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line))}


def test_env_example_documents_every_variable_gantry_and_compose_read():
    read = {**_variables_of_compose(), **_variables_read_by_gantry()}
    # The scan finds what it must, or it would pass by finding nothing.
    assert {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "LOG_FORMAT"} <= set(read)
    assert {"POSTGRES_PASSWORD", "WORKER_CONCURRENCY", "GANTRY_SANDBOX_TIME_SCALE"} <= set(read)
    missing = {name: where for name, where in read.items() if name not in _documented()}
    assert missing == {}, "add these to .env.example"


def test_env_example_documents_nothing_that_nothing_reads():
    read = set(_variables_of_compose()) | set(_variables_read_by_gantry()) | _READ_BY_LIBRARIES
    assert _documented() - read == set()


# --- docker compose config ----------------------------------------------------------------------


def _compose_binary() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _env_file(**values: str) -> str:
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        lines.append(f"{m.group(1)}={values[m.group(1)]}" if m and m.group(1) in values else line)
    return "\n".join(lines) + "\n"


def test_docker_compose_accepts_the_file(tmp_path):
    compose = _compose_binary()
    if compose is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env = {k: v for k, v in env.items() if k not in _documented()}

    def config(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*compose, *extra, "config", "-q"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    (tmp_path / ".env").write_text(
        _env_file(
            SECRET_KEY=secrets.token_urlsafe(50),
            POSTGRES_PASSWORD="compose-check",
            GANTRY_DB_OWNER_PASSWORD="compose-owner",
            GANTRY_DB_APP_PASSWORD="compose-app",
        )
    )
    for profile in ((), ("--profile", "sandbox")):
        result = config(*profile)
        assert result.returncode == 0, result.stderr
    # .env.example copied as it is does not start a stack without a database password.
    (tmp_path / ".env").write_text(_env_file())
    refused = config()
    assert refused.returncode != 0
    assert "PASSWORD" in refused.stderr


# --- production settings -----------------------------------------------------------------------


def _production_env(**extra: str) -> dict[str, str]:
    weakening = {"SECURE_SSL_REDIRECT", "SECURE_COOKIES", "SECURE_HSTS_SECONDS", "LOG_FORMAT"}
    return {
        **{k: v for k, v in os.environ.items() if k not in weakening},
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "gantry.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://gantry.example.com",
        **extra,
    }


def _deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_the_deploy_checks():
    result = _deploy_check(_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    # And the check is real: cookies without Secure fail it.
    weakened = _deploy_check(_production_env(SECURE_COOKIES="0"))
    assert weakened.returncode != 0
    assert "SESSION_COOKIE_SECURE" in weakened.stdout + weakened.stderr


# --- health probes -------------------------------------------------------------------------------

PROBE_HOST = "10.0.3.17:8000"  # how a load balancer addresses a container: not an allowed host


@pytest.fixture
def production_security(settings):
    """The security settings of DEBUG=0 (gantry/settings.py) on the test client."""
    settings.ALLOWED_HOSTS = ["gantry.example.com"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    settings.SECURE_HSTS_SECONDS = 3600
    return settings


def test_healthz_answers_a_plain_http_probe_without_login_or_database(production_security):
    # No database access is allowed in this test: a query would fail the request.
    client = Client()
    response = client.get("/healthz", HTTP_HOST=PROBE_HOST, HTTP_X_REQUEST_ID="lb-probe-000001")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Request-ID"] == "lb-probe-000001"
    assert response["Cache-Control"] == "no-store"
    assert client.head("/healthz", HTTP_HOST=PROBE_HOST).status_code == 200
    assert client.post("/healthz", HTTP_HOST=PROBE_HOST).status_code == 405
    # The same settings do redirect and check hosts everywhere else.
    page = client.get("/login/", HTTP_HOST="gantry.example.com")
    assert page.status_code == 301
    assert page["Location"] == "https://gantry.example.com/login/"
    assert client.get("/login/", HTTP_HOST=PROBE_HOST).status_code == 400


@pytest.fixture
def own_queue(redis_url, settings):
    """Celery in this process on the test Redis and a queue no worker consumes.

    Set and put back by hand: Celery's settings object is a chain of mappings that
    pytest's monkeypatch cannot always undo (an attribute it found through the chain
    is not one it can delete)."""
    from celery_app import app

    queue = f"gantry-test-{uuid.uuid4().hex[:8]}"
    app.conf.broker_url = redis_url.rsplit("/", 1)[0] + "/14"
    app.conf.task_default_queue = queue
    yield queue
    app.conf.broker_url = settings.CELERY_BROKER_URL
    app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE


@pytest.mark.django_db
def test_readyz_is_503_naming_the_worker_when_none_runs(production_security, own_queue):
    from deployer.models import Installation

    installation = Installation.current().installation_id
    response = Client().get("/readyz", HTTP_HOST=PROBE_HOST)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["worker"]
    # The database check names the installation (the gantry:installation tag value).
    assert body["checks"]["database"] == {"ok": True, "installation": installation}
    assert body["checks"]["redis"] == {"ok": True}
    assert own_queue in body["checks"]["worker"]["error"]


def _ready(client: Client, deadline: float) -> dict:
    while True:
        response = client.get("/readyz", HTTP_HOST=PROBE_HOST)
        if response.status_code == 200 or time.monotonic() > deadline:
            return {"status_code": response.status_code, **response.json()}
        time.sleep(0.5)


def test_readyz_with_a_real_worker_then_a_redis_outage(production_security, worker, settings):
    from celery_app import app
    from deployer.models import Installation

    database = {"ok": True, "installation": Installation.current().installation_id}
    client = Client()
    ready = _ready(client, time.monotonic() + 90)
    assert ready["status_code"] == 200, ready
    assert ready == {
        "status_code": 200,
        "status": "ok",
        "failed": [],
        "checks": {"database": database, "redis": {"ok": True}, "worker": {"ok": True}},
    }

    # Simulated outage: Redis's URL now points at a port nothing listens on (with a password,
    # which must not appear in the answer).
    closed = _free_port()
    settings.REDIS_URL = f"redis://:s3cret-redis-pw@127.0.0.1:{closed}/0"
    response = client.get("/readyz", HTTP_HOST=PROBE_HOST)
    assert response.status_code == 503
    # (The worker may also miss its one second on a loaded machine: not what is tested here.)
    assert response.json()["failed"][:1] == ["redis"], response.json()
    assert response.json()["checks"]["database"] == database
    text = response.content.decode()
    assert "s3cret-redis-pw" not in text
    assert str(closed) not in text
    assert "Traceback" not in text

    # The broker is the same Redis in production: with it gone too, no worker can be reached.
    broker = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{closed}/14"
    try:
        response = client.get("/readyz", HTTP_HOST=PROBE_HOST)
    finally:
        app.conf.broker_url = broker
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis", "worker"], response.json()
    assert response.json()["checks"]["database"] == database


# --- JSON logs --------------------------------------------------------------------------------


@pytest.fixture
def json_log():
    """Log lines as production writes them (gantry.logging.JsonFormatter), collected here."""
    from gantry.logging import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_a_request_log_line_carries_its_request_id(client, json_log):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-from-the-proxy-42")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-from-the-proxy-42"
    (line,) = [entry for entry in json_log() if entry["logger"] == "django.request"]
    assert line["message"] == "Not Found: /no-such-page/"
    assert line["level"] == "WARNING"
    assert line["request_id"] == "req-from-the-proxy-42"
    assert line["deployment_id"] is None
    assert line["status_code"] == 404  # an `extra` field
    assert "request" not in line  # the request object itself is never written
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def test_json_lines_carry_the_exception_and_extra_fields(json_log):
    from gantry.request_context import bind

    with bind(request_id="task-0000-1111", deployment_id=7):
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("deployer.test").exception(
                "pass failed", extra={"logical_id": "Vpc", "attempt": 3}
            )
    (line,) = [entry for entry in json_log() if entry["logger"] == "deployer.test"]
    assert line["request_id"] == "task-0000-1111"
    assert line["deployment_id"] == 7
    assert line["level"] == "ERROR"
    assert line["message"] == "pass failed"
    assert line["exception"].startswith("Traceback")
    assert "ValueError: boom" in line["exception"]
    assert (line["logical_id"], line["attempt"]) == ("Vpc", 3)


def test_a_deployer_task_log_line_carries_the_deployment_id(worker_env):
    """A real worker with production settings (DEBUG=0, so JSON logs by default) runs a
    deployer task; Celery's own line about the task names its deployment and task id."""
    from deployer.tasks import advance

    env = {k: v for k, v in worker_env["env"].items() if k != "LOG_FORMAT"}
    env.update(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="gantry.example.com")
    log = Path(f"/tmp/gantry-test-worker-{worker_env['queue']}.log")
    log.unlink(missing_ok=True)
    worker = WorkerProcess(env, worker_env["queue"], concurrency=1)
    worker.start()
    try:
        # No such deployment: the pass finds nothing to do, and AWS is not called.
        task_id = advance.apply_async((987654321, "no-token")).id
        deadline = time.monotonic() + 90
        line = None
        while line is None and time.monotonic() < deadline:
            time.sleep(0.5)
            for text in log.read_text(errors="replace").splitlines():
                if text.startswith("{") and task_id in text and "succeeded" in text:
                    line = json.loads(text)
    finally:
        worker.stop()
    assert line is not None, log.read_text(errors="replace")[-3000:]
    assert line["logger"] == "celery.app.trace"
    assert line["message"].startswith(f"Task deployer.tasks.advance[{task_id}] succeeded")
    assert line["deployment_id"] == 987654321
    assert line["request_id"] == task_id
    ready = [
        json.loads(text)
        for text in log.read_text(errors="replace").splitlines()
        if text.startswith("{") and " ready." in text
    ]
    assert ready and ready[0]["deployment_id"] is None  # nothing leaks outside a task
