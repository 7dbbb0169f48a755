#!/usr/bin/env bash
# `make test`: lint, Django's checks, then the whole suite against real services.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
BIN=.venv/bin

export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
ensure_redis || echo "No Redis could be started; the tests start their own." >&2
if [ -z "${DATABASE_URL:-}" ]; then
  if ensure_postgres; then
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry
    # pytest creates test_gantry itself; the database named in the URL is for manage.py checks.
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='gantry'" \
      | grep -q 1 || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE gantry" || true
  else
    echo "PostgreSQL is not reachable: testing against SQLite." >&2
  fi
fi
echo "Database: ${DATABASE_URL:-sqlite (default)}"

$BIN/ruff check .
$BIN/ruff format --check .
# The apps' boundaries ([tool.importlinter] in pyproject.toml): designer, teams and audit never
# import the deployer; pages compose them.
$BIN/lint-imports
$BIN/python manage.py check --fail-level WARNING
$BIN/python manage.py makemigrations --check --dry-run >/dev/null \
  || { echo "Model changes without a migration: run manage.py makemigrations" >&2; exit 1; }
exec $BIN/pytest "$@"
