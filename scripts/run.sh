#!/usr/bin/env bash
# `make run`: migrate, start what is missing (Redis, the AWS emulator), a Celery worker and the
# web server, then print the URL and the demo login. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
BIN=.venv/bin
mkdir -p .run

export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:5000}
# The sandbox target talks to AWS's time behaviour and faults, simulated in front of the
# emulator at a tenth of real time (GANTRY_SANDBOX_TIME_SCALE=1 for real durations).
SANDBOX_PORT=${SANDBOX_PORT:-4566}
export GANTRY_SANDBOX_ENDPOINT=${GANTRY_SANDBOX_ENDPOINT:-http://127.0.0.1:$SANDBOX_PORT}
export GANTRY_SANDBOX_TIME_SCALE=${GANTRY_SANDBOX_TIME_SCALE:-0.1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-sandbox}        # the emulator accepts any key
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-sandbox}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

ensure_redis
MIGRATE_DATABASE_URL=${DATABASE_URL:-}
if [ -z "${DATABASE_URL:-}" ] && ensure_postgres; then
  # Row locks (the reconciler's SELECT ... FOR UPDATE) need a real database; SQLite is the
  # fallback when no PostgreSQL is reachable.
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='gantry'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE gantry"
  # As in production: migrations as the owner role, everything else as the application role,
  # which may not rewrite the audit trail (README: "Database roles"). Idempotent.
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry $BIN/python manage.py db_roles \
    --owner gantry_owner --app gantry_app
  MIGRATE_DATABASE_URL=postgres://gantry_owner@127.0.0.1:5432/gantry
  export DATABASE_URL=postgres://gantry_app@127.0.0.1:5432/gantry
fi
echo "Database: ${DATABASE_URL:-SQLite file db.sqlite3}"

emu=${AWS_ENDPOINT_URL#*://}; emu_host=${emu%%:*}; emu_port=${emu##*:}; emu_port=${emu_port%%/*}
if port_open "$emu_host" "$emu_port"; then
  echo "AWS emulator already running at $AWS_ENDPOINT_URL"
else
  echo "Starting the AWS emulator (moto server) at $AWS_ENDPOINT_URL"
  MOTO_IAM_LOAD_MANAGED_POLICIES=true $BIN/moto_server -H "$emu_host" -p "$emu_port" >.run/moto.log 2>&1 &
  pids+=($!)
fi

if port_open 127.0.0.1 "$SANDBOX_PORT"; then
  echo "Sandbox proxy already running at $GANTRY_SANDBOX_ENDPOINT"
else
  echo "Starting the sandbox proxy at $GANTRY_SANDBOX_ENDPOINT (time scale $GANTRY_SANDBOX_TIME_SCALE)"
  $BIN/python -m deployer.sandbox --listen "127.0.0.1:$SANDBOX_PORT" --upstream "$AWS_ENDPOINT_URL" \
    --time-scale "$GANTRY_SANDBOX_TIME_SCALE" >.run/sandbox.log 2>&1 &
  pids+=($!)
fi

env ${MIGRATE_DATABASE_URL:+DATABASE_URL=$MIGRATE_DATABASE_URL} $BIN/python manage.py migrate --noinput
$BIN/python manage.py gantry_demo | tee .run/login.txt

$BIN/celery -A celery_app worker --loglevel INFO --concurrency 2 >.run/worker.log 2>&1 &
pids+=($!)
$BIN/celery -A celery_app beat --loglevel INFO --schedule .run/celerybeat-schedule >.run/beat.log 2>&1 &
pids+=($!)

if port_open "$HOST" "$PORT"; then
  echo "Port $PORT is taken; set PORT=... to use another." >&2
  exit 1
fi
echo
echo "Gantry is starting at http://$HOST:$PORT/  ($(cat .run/login.txt))"
echo "Logs: .run/worker.log, .run/beat.log, .run/sandbox.log, .run/moto.log. Stop with Ctrl-C."
echo
# As production runs it (Dockerfile): X-Forwarded-For is not believed (Gantry reads the
# client address itself, trusting TRUSTED_PROXY_COUNT proxies), and on Ctrl-C open live
# streams get 5 s before they are closed instead of holding the shutdown forever.
$BIN/uvicorn gantry.asgi:application --host "$HOST" --port "$PORT" --log-level info \
  --no-proxy-headers --timeout-graceful-shutdown 5 &
pids+=($!)
wait "${pids[-1]}"
