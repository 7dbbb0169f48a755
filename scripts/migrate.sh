#!/bin/sh
# The compose stack's one-shot `migrate` service: the database roles first, as PostgreSQL's
# superuser (DATABASE_ADMIN_URL), then the migrations as the owner role (DATABASE_URL). Web,
# workers and beat connect as the application role, which can neither rewrite the audit trail
# nor switch its trigger off (README: "Database roles").
set -eu
python manage.py db_roles
exec python manage.py migrate --noinput
