#!/usr/bin/env bash
# Debian packages Gantry needs outside Python: Graphviz (`dot`) draws the diagrams, Redis is the
# cache and broker. `system-deps.sh test` adds Chromium for the browser tests (Debian's build,
# never a browser downloaded by a test tool) and docker-compose, which checks docker-compose.yml
# (`config -q`) in tests/test_production.py: the compose tool only, without the Docker engine
# Debian recommends with it.
set -euo pipefail
missing=()
lean=()  # installed without their recommended packages
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${1:-}" = "test" ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 \
    || lean+=(docker-compose)
fi
if [ ${#missing[@]} -eq 0 ] && [ ${#lean[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "Gantry needs these Debian packages: ${missing[*]} ${lean[*]}. Install them with apt-get." >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "Installing Debian packages: ${missing[*]} ${lean[*]}"
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ${#lean[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${lean[@]}" \
    >/dev/null
fi
