"""The database roles Gantry runs as (``manage.py db_roles``): the application's role cannot
rewrite the audit trail, not even by stepping around its trigger, and Gantry works as it.

The suite itself connects as a superuser (it flushes the audit table between tests, which is
exactly what the application's role must never do). These tests make an owner and an
application role for the test database with the command, as ``make run`` and the compose
stack do, connect as the application role, and drop both roles afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def roles():
    if connection.vendor != "postgresql":
        pytest.skip("database roles are PostgreSQL's; SQLite has none")
    database = connection.settings_dict["NAME"]
    owner, app = f"{database}_owner"[:63], f"{database}_app"[:63]
    call_command("db_roles", owner=owner, app=app)
    try:
        yield owner, app
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'REASSIGN OWNED BY "{owner}" TO CURRENT_USER')
            for role in (owner, app):
                cursor.execute(f'DROP OWNED BY "{role}"')
                cursor.execute(f'DROP ROLE "{role}"')


def _connect(role: str) -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        dbname=db["NAME"],
        user=role,
        autocommit=True,
    )


def _refused(conn: psycopg.Connection, statement: str) -> str:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(statement)
    return str(caught.value)


def test_neither_role_is_a_superuser_and_the_owner_owns_the_audit_table(roles):
    owner, app = roles
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolbypassrls FROM pg_roles "
            "WHERE rolname IN (%s, %s) ORDER BY rolname",
            [owner, app],
        )
        assert cursor.fetchall() == [(app, False, False, False), (owner, False, False, False)]
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_auditentry'")
        assert cursor.fetchone() == (owner,)


def test_the_application_role_may_add_and_read_audit_entries_and_nothing_else(roles):
    _, app = roles
    with _connect(app) as conn:
        conn.execute(
            "INSERT INTO audit_auditentry (at, actor_name, action, object_type, object_id, "
            "object_repr, data, request_id, channel) "
            "VALUES (now(), 'probe', 'auth.failed', '', '', 'x', '{}', '', 'cli')"
        )
        assert conn.execute("SELECT count(*) FROM audit_auditentry").fetchone()[0] == 1
        for statement in (
            "UPDATE audit_auditentry SET object_repr = 'rewritten'",
            "DELETE FROM audit_auditentry",
            "TRUNCATE audit_auditentry",
        ):
            assert "permission denied" in _refused(conn, statement), statement
        assert "must be owner" in _refused(
            conn, "ALTER TABLE audit_auditentry DISABLE TRIGGER audit_auditentry_no_update_delete"
        )
        assert "must be owner" in _refused(conn, "ALTER TABLE audit_auditentry DISABLE TRIGGER ALL")
        assert "must be owner" in _refused(
            conn, "DROP TRIGGER audit_auditentry_no_truncate ON audit_auditentry"
        )
        assert "permission denied" in _refused(conn, "SET session_replication_role = replica")
        assert "permission denied" in _refused(conn, "CREATE TABLE sneaky (id int)")
        assert conn.execute("SELECT object_repr FROM audit_auditentry").fetchall() == [("x",)]


def test_gantry_runs_as_the_application_role(roles, make_user, team):
    """A design saved through the service (and its audit entry) as the application role;
    the same process cannot change that entry."""
    _, app = roles
    make_user("ada", team=team, role="admin")
    db = connection.settings_dict
    url = f"postgres://{app}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from django.db import connection, DatabaseError\n"
        "from designer.services import design_create\n"
        "from designer.spec import DEFAULT_SPEC\n"
        "from teams.models import Team\n"
        "user = get_user_model().objects.get(username='ada')\n"
        "design = design_create(team=Team.objects.get(), user=user, spec_data=DEFAULT_SPEC)\n"
        "try:\n"
        "    connection.cursor().execute(\"UPDATE audit_auditentry SET object_repr = 'x'\")\n"
        "except DatabaseError as exc:\n"
        "    print('refused:', exc)\n"
        "print('saved', design.pk)\n"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "refused: permission denied for table audit_auditentry" in done.stdout
    assert "saved" in done.stdout
    from audit.models import AuditEntry

    assert AuditEntry.objects.filter(action="design.created", actor__username="ada").count() == 1


def test_db_roles_is_idempotent(roles):
    owner, app = roles
    call_command("db_roles", owner=owner, app=app)
    with _connect(app) as conn:
        assert "permission denied" in _refused(conn, "DELETE FROM audit_auditentry")
