#!/bin/sh
# Install what the PostgreSQL store tests need: Debian's PostgreSQL server (initdb, pg_ctl,
# postgres). The tests start their own throwaway cluster on a loopback port, as the
# unprivileged user `nobody` when run as root; the cluster Debian's package sets up is not used.
# Idempotent: does nothing when the server binaries are present. Without root it only says
# what is missing and exits 0, so `make test` still runs the other tests (those then skip).
set -eu

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
    echo "install-postgres: PostgreSQL is already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-postgres: PostgreSQL is missing — not root, so not installing;" \
         "run 'sudo apt-get install -y postgresql' (PostgreSQL tests will be skipped)"
    exit 0
fi

echo "install-postgres: installing postgresql"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
echo "install-postgres: installed postgresql"
