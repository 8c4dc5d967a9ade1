#!/usr/bin/env bash
# Make sure Debian's chromium is at /usr/bin/chromium for the browser tests.
#
# Playwright drives this system browser (no browser download), so the tests
# work on machines that can reach only the Debian mirrors and PyPI. Exits at
# once when chromium is already installed; otherwise installs it with apt-get,
# refreshing the package lists only when apt does not know the package yet.
#
# Environment:
#   CHROMIUM  path the tests expect (default /usr/bin/chromium)
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { printf '[install_browser] %s\n' "$*" >&2; }

if [[ -x "$CHROMIUM" ]]; then
    log "$("$CHROMIUM" --version 2>/dev/null || echo chromium) already installed at $CHROMIUM"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "error: $CHROMIUM is missing and apt-get is not available; install Chromium so that $CHROMIUM exists, then rerun"
    exit 1
fi

SUDO=()
if [[ "$(id -u)" != "0" ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        log "error: $CHROMIUM is missing and installing it needs root; run 'sudo apt-get install -y chromium' (or rerun this script as root)"
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# A font, so that screenshots show text on minimal images without one.
PACKAGES=(chromium fonts-dejavu-core)
install_packages() {
    log "installing ${PACKAGES[*]} with apt-get"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}
# Stale package lists name files the mirror no longer has: refresh and retry.
if ! apt-cache show chromium >/dev/null 2>&1 || ! install_packages; then
    log "refreshing apt package lists"
    "${SUDO[@]}" apt-get update -qq
    install_packages
fi

if [[ ! -x "$CHROMIUM" ]]; then
    log "error: apt-get installed chromium but $CHROMIUM does not exist"
    exit 1
fi
log "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium) at $CHROMIUM"
