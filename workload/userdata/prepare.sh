#!/bin/bash
# Gantry API instance: make sure the TLS certificate and the API credential are in place.
# Runs as root before every start of gantry-api.service (see api_health.sh). Never prints the
# credential: values travel through 0600 files and shell variables, never argv or stdout.
set -euo pipefail
umask 077

: "${GANTRY_API_SECRET_ARN:?GANTRY_API_SECRET_ARN is not set}"
: "${GANTRY_API_REGION:?GANTRY_API_REGION is not set}"
dir="${GANTRY_API_DIR:-/etc/gantry-api}"
group="${GANTRY_API_GROUP:-gantry-api}"
errors="$dir/.aws-error"
# The same request token on every instance: when several boot at once against an empty secret,
# the first PutSecretValue wins and the others fail (same token, other value) and read the winner.
first_value_token="gantry-first-boot-credential-000000001"

fail() {
    echo "gantry-api: $1" >&2
    cat "$errors" >&2 2>/dev/null || true
    exit 1
}
rm -f "$errors"

# The API subnets have no route to the internet, so nothing can be installed: everything used
# here ships with the standard Amazon Linux 2023 AMI.
for tool in openssl aws; do
    command -v "$tool" >/dev/null || fail "$tool is missing (the standard AL2023 AMI has it)"
done

install_file() {  # install_file <source> <name>: readable by the service's group only
    chgrp "$group" "$1"
    chmod 0640 "$1"
    mv -f "$1" "$dir/$2"
}

# Self-signed certificate for this host's private DNS name, renewed 30 days before expiry.
if ! openssl x509 -checkend 2592000 -noout -in "$dir/tls-cert.pem" >/dev/null 2>&1; then
    host="$(hostname -f 2>/dev/null || cat /proc/sys/kernel/hostname)"
    openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 365 \
        -subj "/CN=$host" -addext "subjectAltName=DNS:$host" \
        -keyout "$dir/tls-key.pem.new" -out "$dir/tls-cert.pem.new" >/dev/null 2>"$errors" ||
        fail "could not generate the TLS certificate"
    install_file "$dir/tls-key.pem.new" tls-key.pem
    install_file "$dir/tls-cert.pem.new" tls-cert.pem
    echo "gantry-api: generated a self-signed certificate for $host"
fi

read_secret() {
    aws secretsmanager get-secret-value --region "$GANTRY_API_REGION" \
        --secret-id "$GANTRY_API_SECRET_ARN" --query SecretString --output text 2>"$errors"
}


if ! value="$(read_secret)"; then
    # The secret exists but has no current version: this is the first instance to boot.
    grep -q "AWSCURRENT" "$errors" || fail "could not read the API credential $GANTRY_API_SECRET_ARN"
    # 40 letters and digits, what the plan's GenerateSecretString asks for (PasswordLength 40,
    # ExcludePunctuation): ~238 bits from openssl's CSPRNG.
    random="$(openssl rand -base64 96 | tr -dc 'A-Za-z0-9')"
    [ "${#random}" -ge 40 ] || fail "could not generate a credential"
    printf '%s' "${random:0:40}" >"$dir/.new-credential"
    random=""
    if aws secretsmanager put-secret-value --region "$GANTRY_API_REGION" \
        --secret-id "$GANTRY_API_SECRET_ARN" --client-request-token "$first_value_token" \
        --secret-string "file://$dir/.new-credential" >/dev/null 2>"$errors"; then
        echo "gantry-api: the secret had no value; stored a newly generated credential"
    else
        echo "gantry-api: another instance stored the credential first; reading it"
    fi
    rm -f "$dir/.new-credential"
    value="$(read_secret)" || fail "could not read the API credential $GANTRY_API_SECRET_ARN"
fi
if [ -z "$value" ] || [ "$value" = "None" ]; then
    fail "the secret $GANTRY_API_SECRET_ARN has no string value"
fi
printf '%s' "$value" >"$dir/credential.new"
install_file "$dir/credential.new" credential
rm -f "$errors"
echo "gantry-api: credential in place"
