#!/usr/bin/env bash
# Installs Debian's Chromium for the real-browser checks (npm run test:browser) when it is missing.
# playwright-core drives it; it never downloads a browser of its own.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null
