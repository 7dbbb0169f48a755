"""Only the table's owner keeps UPDATE, DELETE, TRUNCATE, REFERENCES and TRIGGER on the audit
table: the application role may SELECT and INSERT, nothing else.

``manage.py db_roles`` grants the application role its privileges on every table, including
by default privileges on tables the owner creates later; on a fresh database that includes
this one, created by 0001 in the same ``migrate``. This takes them back from every role but
the owner, whoever they were granted to. PostgreSQL only; nothing to do on SQLite.
"""

from django.db import migrations

REVOKE = """
DO $$
DECLARE grantee_name text;
BEGIN
    FOR grantee_name IN
        SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
        FROM pg_class c
        CROSS JOIN LATERAL aclexplode(c.relacl) a
        LEFT JOIN pg_roles r ON r.oid = a.grantee
        WHERE c.oid = 'audit_auditentry'::regclass
          AND a.grantee <> c.relowner
          AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')
    LOOP
        EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_auditentry FROM '
            || grantee_name;
    END LOOP;
END
$$
"""


def revoke(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVOKE, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_live_stack_actions")]

    operations = [migrations.RunPython(revoke, migrations.RunPython.noop, elidable=False)]
