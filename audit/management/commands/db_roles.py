"""``manage.py db_roles``: the PostgreSQL roles Gantry runs as, made or brought up to date.

The audit trail's trigger (audit migration 0002) refuses UPDATE, DELETE and TRUNCATE, but a
superuser can switch triggers off (``session_replication_role = replica``) and a table's owner
can disable them (``ALTER TABLE ... DISABLE TRIGGER``). So Gantry uses two roles, neither a
superuser:

- the **owner** (``GANTRY_DB_OWNER_ROLE``, default ``gantry_owner``) owns the database, its
  schema and every table: migrations run as it;
- the **application** (``GANTRY_DB_APP_ROLE``, default ``gantry_app``) is what web, workers
  and beat connect as: it reads and writes the tables, and may only SELECT and INSERT on the
  audit table; it cannot create tables or change any table's definition or triggers.

Run it as a superuser (or a role with CREATEROLE that owns the database), before
``migrate``: with ``DATABASE_ADMIN_URL`` set it connects there, else through ``DATABASE_URL``.
Passwords come from ``GANTRY_DB_OWNER_PASSWORD`` and ``GANTRY_DB_APP_PASSWORD`` (left unset,
a role keeps the one it has, or none, which local "trust" authentication accepts). It is
idempotent: run it again after restoring a dump or on an existing database, and it hands
every object in the schema to the owner and sets the privileges again.
"""

from __future__ import annotations

import os
from typing import Any

import dj_database_url
import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from psycopg import sql

AUDIT_TABLE = "audit_auditentry"
ROLE_OPTIONS = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


def _connect_admin() -> psycopg.Connection:
    url = os.environ.get("DATABASE_ADMIN_URL", "")
    if url:
        db = dj_database_url.parse(url)
        params = {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"]}
        params.update(dbname=db["NAME"], password=db["PASSWORD"] or None)
    else:
        if connection.vendor != "postgresql":
            raise CommandError("db_roles is for PostgreSQL; DATABASE_URL names another database")
        params = {k: v for k, v in connection.get_connection_params().items() if v is not None}
        params.pop("cursor_factory", None)
        params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def _ensure_role(cursor, name: str, password: str | None) -> None:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    verb = "ALTER" if cursor.fetchone() else "CREATE"
    statement = sql.SQL(f"{verb} ROLE {{}} {ROLE_OPTIONS}").format(sql.Identifier(name))
    if password:
        statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
    cursor.execute(statement)


def db_roles_apply(*, cursor, owner: str, app: str) -> list[str]:
    """Give everything to ``owner`` and ``app`` its privileges; returns what was done."""
    o, a = sql.Identifier(owner), sql.Identifier(app)
    cursor.execute("SELECT current_database()")
    database = sql.Identifier(cursor.fetchone()[0])
    done: list[str] = []

    def run(statement: sql.Composable, note: str) -> None:
        cursor.execute(statement)
        done.append(note)

    run(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, o), f"database owned by {owner}")
    run(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(o), "schema public owned by the owner")
    cursor.execute(
        """
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND pg_get_userbyid(c.relowner) <> %s
          -- a sequence owned by a table moves with it
          AND NOT (c.relkind = 'S' AND EXISTS (
                SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
        """,
        [owner],
    )
    for name, kind in cursor.fetchall():
        what = {"S": "SEQUENCE", "v": "VIEW", "m": "MATERIALIZED VIEW"}.get(kind, "TABLE")
        run(sql.SQL(f"ALTER {what} {{}} OWNER TO {{}}").format(sql.Identifier(name), o), name)
    cursor.execute(
        """
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> %s
        """,
        [owner],
    )
    for (signature,) in cursor.fetchall():
        run(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(sql.SQL(signature), o), signature)
    for statement in (
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {app}",
        "GRANT USAGE ON SCHEMA public TO {app}",
        "REVOKE CREATE ON SCHEMA public FROM {app}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
        # Tables the owner makes in later migrations: the same, without asking.
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public"
        " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public"
        " GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ):
        run(sql.SQL(statement).format(db=database, app=a, owner=o), statement.split(" {")[0])
    cursor.execute("SELECT to_regclass(%s)", [f"public.{AUDIT_TABLE}"])
    if cursor.fetchone()[0] is not None:
        run(
            sql.SQL(
                "REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {} FROM PUBLIC, {}"
            ).format(sql.Identifier(AUDIT_TABLE), a),
            f"{AUDIT_TABLE}: {app} may only SELECT and INSERT",
        )
    return done


class Command(BaseCommand):
    help = "Create or update the owner and application roles (see the module docstring)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--owner", default=os.environ.get("GANTRY_DB_OWNER_ROLE", "gantry_owner")
        )
        parser.add_argument("--app", default=os.environ.get("GANTRY_DB_APP_ROLE", "gantry_app"))

    def handle(self, *args: Any, owner: str, app: str, **options: Any) -> None:
        if owner == app:
            raise CommandError("the owner and the application must be different roles")
        with _connect_admin() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT current_user")
            if cursor.fetchone()[0] in {owner, app}:
                raise CommandError("run db_roles as a superuser, not as the role it sets up")
            _ensure_role(cursor, owner, os.environ.get("GANTRY_DB_OWNER_PASSWORD") or None)
            _ensure_role(cursor, app, os.environ.get("GANTRY_DB_APP_PASSWORD") or None)
            with conn.transaction():
                done = db_roles_apply(cursor=cursor, owner=owner, app=app)
        self.stdout.write(
            f"Roles ready: {owner} owns the database ({len(done)} steps); {app} may read and "
            f"write the tables, and only read and add audit entries."
        )
