"""On PostgreSQL, the database itself refuses to rewrite the audit trail.

A row trigger rejects every UPDATE and DELETE of ``audit_auditentry`` and a statement trigger
rejects TRUNCATE, so raw SQL through Django's connection cannot change history either (the
model and its queryset already refuse). Only a database superuser can step around it, by
dropping the trigger or with ``session_replication_role = replica`` (as ``pg_restore
--disable-triggers`` does); the application's role should not be one.

SQLite has no such triggers for TRUNCATE and is a development database: nothing is installed
there, and the model's refusals are the guard.
"""

from django.db import migrations

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION audit_auditentry_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit entries are append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The audit trail is never changed or deleted; add an entry instead.';
    END;
    $$
    """,
    """
    CREATE TRIGGER audit_auditentry_no_update_delete
        BEFORE UPDATE OR DELETE ON audit_auditentry
        FOR EACH ROW EXECUTE FUNCTION audit_auditentry_refuse_change()
    """,
    """
    CREATE TRIGGER audit_auditentry_no_truncate
        BEFORE TRUNCATE ON audit_auditentry
        FOR EACH STATEMENT EXECUTE FUNCTION audit_auditentry_refuse_change()
    """,
]

REVERSE = [
    "DROP TRIGGER IF EXISTS audit_auditentry_no_truncate ON audit_auditentry",
    "DROP TRIGGER IF EXISTS audit_auditentry_no_update_delete ON audit_auditentry",
    "DROP FUNCTION IF EXISTS audit_auditentry_refuse_change()",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            # No parameters: the SQL is sent as written, its % signs are plpgsql's own.
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(REVERSE), elidable=False)]
