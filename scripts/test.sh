#!/usr/bin/env bash
# Install everything the tests need (into .venv) and run the whole suite: lint, types, pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "TwinEdge needs Python >= 3.11")'

# Real protocol peers for the tests, from Debian's packages: PostgreSQL (second storage backend),
# Mosquitto (MQTT), InfluxDB 1.x (the v1 sink), socat (pseudo-terminal pairs for Modbus RTU),
# Chromium with CJK fonts (dashboard tests drive it headless through Playwright). Installed when missing and we may (root); otherwise those tests skip and say why.
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-noto-cjk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${missing[*]} (Debian packages)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed and not root: the tests that need them will skip"
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
