#!/bin/bash
# Gantry: first-boot setup of an internal API instance (rendered by workload/artifacts.py).
#
# Installs a tiny HTTPS health API (server.py, Python standard library) as the systemd service
# gantry-api, running as the unprivileged user gantry-api. Before every start of the service,
# prepare.sh (as root) makes sure that:
#   - a self-signed TLS certificate exists (made with openssl, renewed before it expires);
#   - the API credential is in /etc/gantry-api/credential (0640 root:gantry-api). It is read from
#     Secrets Manager; if the secret has no value yet, a random one is generated and stored with
#     PutSecretValue (the first instance to write wins; the others read its value).
# A restart of the service therefore also picks up a rotated credential.
# Nothing here prints the credential: no `set -x`, and values travel through files, never argv.
set -euo pipefail
umask 022

install -d -m 0755 /usr/local/lib/gantry-api
id -u gantry-api >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin gantry-api
install -d -m 0750 -o root -g gantry-api /etc/gantry-api

cat > /etc/gantry-api/env <<'GANTRY_END_OF_FILE'
GANTRY_API_SECRET_ARN=@@SECRET_ARN@@
GANTRY_API_REGION=@@REGION@@
GANTRY_API_PORT=@@API_PORT@@
GANTRY_API_ANONYMOUS_LIVENESS=@@ANONYMOUS_LIVENESS@@
GANTRY_API_CERT=/etc/gantry-api/tls-cert.pem
GANTRY_API_KEY=/etc/gantry-api/tls-key.pem
GANTRY_API_CREDENTIAL_FILE=/etc/gantry-api/credential
GANTRY_END_OF_FILE

cat > /usr/local/lib/gantry-api/server.py <<'GANTRY_END_OF_FILE'
@@SERVER_PY@@
GANTRY_END_OF_FILE

cat > /usr/local/lib/gantry-api/prepare.sh <<'GANTRY_END_OF_FILE'
@@PREPARE_SH@@
GANTRY_END_OF_FILE
chmod 0755 /usr/local/lib/gantry-api/prepare.sh

cat > /etc/systemd/system/gantry-api.service <<'GANTRY_END_OF_FILE'
[Unit]
Description=Gantry internal API (HTTPS /health)
Wants=network-online.target
After=network-online.target
# Keep trying: at first boot the Secrets Manager endpoint may answer a little later.
StartLimitIntervalSec=0

[Service]
EnvironmentFile=/etc/gantry-api/env
# "+": runs as root although the service itself does not.
ExecStartPre=+/usr/local/lib/gantry-api/prepare.sh
ExecStart=/usr/bin/python3 /usr/local/lib/gantry-api/server.py
User=gantry-api
Group=gantry-api
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
GANTRY_END_OF_FILE

systemctl daemon-reload
systemctl enable gantry-api.service
# --no-block: the first start may wait for the Secrets Manager endpoint (the unit retries every
# 10 s); cloud-init must not hang or fail on it.
systemctl start --no-block gantry-api.service
