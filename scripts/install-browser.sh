#!/bin/sh
# Install what the browser tests need: Debian's chromium and a Korean font (fonts-nanum).
# Idempotent: does nothing when both are present. Without root it only says what is missing,
# and exits 0, so `make test` still runs the other tests (the browser tests then skip).
set -eu

CHROMIUM=/usr/bin/chromium
missing=""
[ -x "$CHROMIUM" ] || missing="$missing chromium"
if ! fc-list 2>/dev/null | grep -qi nanum; then
    missing="$missing fonts-nanum"
fi

if [ -z "$missing" ]; then
    echo "install-browser: chromium and fonts-nanum are already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: missing:$missing — not root, so not installing;" \
         "run 'sudo apt-get install -y$missing' (browser tests will be skipped)"
    exit 0
fi

echo "install-browser: installing$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
echo "install-browser: installed$missing"
