#!/usr/bin/env bash
# Shared by run.sh and test.sh: start Redis and PostgreSQL when they are not already running.
# Sourced, not executed.

port_open() {  # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && exec 3>&- 3<&-
}

ensure_redis() {  # uses REDIS_URL (redis://host:port/db)
  local hostport host port
  hostport=${REDIS_URL#redis://}; hostport=${hostport%%/*}; hostport=${hostport##*@}
  host=${hostport%%:*}; port=${hostport##*:}; [ "$port" = "$host" ] && port=6379
  if port_open "$host" "$port"; then return 0; fi
  echo "Starting Redis on $host:$port"
  redis-server --daemonize yes --bind "$host" --port "$port" --save "" --appendonly no \
    --dir /tmp --logfile "/tmp/gantry-redis-$port.log"
  for _ in $(seq 50); do port_open "$host" "$port" && return 0; sleep 0.1; done
  echo "Redis did not start on $host:$port" >&2; return 1
}

ensure_postgres() {  # starts the local cluster if it is installed but stopped
  if port_open 127.0.0.1 5432; then return 0; fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "Starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 50); do port_open 127.0.0.1 5432 && return 0; sleep 0.2; done
  fi
  return 1
}
