#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the dashboard's browser test; a no-op when present.
# Usage: infra/chromium.sh   (prints the browser's path)
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "chromium is missing; install Debian's package: sudo apt-get install -y chromium" >&2
        exit 1
    fi
    echo "== installing Debian's chromium (first run only)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
command -v chromium
