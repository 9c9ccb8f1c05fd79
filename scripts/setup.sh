#!/usr/bin/env bash
# Install everything vibe_ft needs on a fresh Debian 12 machine (run as root):
# PostgreSQL 15 + dev headers + pg_cron, libclang for bindgen, sudo (cargo pgrx
# test --runas), cargo-pgrx 0.18.1, an unprivileged user to own clusters, and
# the extension itself: its Debian package (scripts/package.sh), installed with
# dpkg, which renames each file into place, so clusters running from this
# PostgreSQL (the demo's) keep working. Idempotent: a second run skips what is
# already there.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh installs packages and must run as root" >&2
    exit 1
fi

log "apt packages"
# python3 runs the e2e tests and the provider simulator (python3-venv: Python tiktoken for
# the token-count comparison); curl is the upload benchmark's baseline; chromium
# opens vibe_ft.report_html in a real browser in the e2e tests.
pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-contrib libclang-dev clang pkg-config sudo python3 python3-venv curl chromium)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's package starts a cluster of its own; vibe_ft never uses it.
systemctl stop postgresql >/dev/null 2>&1 || pg_ctlcluster 15 main stop >/dev/null 2>&1 || true

log "cargo-pgrx 0.18.1"
if ! cargo pgrx --version 2>/dev/null | grep -q 0.18.1; then
    cargo install cargo-pgrx --version 0.18.1 --locked
fi
[ -f "$HOME/.pgrx/config.toml" ] || cargo pgrx init --pg15 /usr/bin/pg_config >/dev/null

log "user $PG_USER (Postgres refuses to run as root)"
id -u "$PG_USER" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$PG_USER"

log "build vibe_ft's package and install it into $(pg_config --pkglibdir)"
deb=$(bash scripts/package.sh)
dpkg -i "$deb" >/dev/null
log "setup done"
