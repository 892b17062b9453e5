#!/usr/bin/env bash
# Installs everything IntelliDox needs on a fresh Debian 12 machine, then the Python venv.
# Idempotent: a second run installs nothing and takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ] || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
command -v clamd >/dev/null || missing+=(clamav clamav-daemon)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)  # python3 -m venv needs it
command -v bwrap >/dev/null || missing+=(bubblewrap)  # the extractor script sandbox
command -v chromium >/dev/null || missing+=(chromium)  # the page's browser tests (Playwright drives it)
command -v prometheus >/dev/null || missing+=(prometheus)  # metrics and alerts (we run it, not systemd)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The venv is rebuilt only when pyproject.toml changes (its hash is the stamp).
stamp=".venv/.pyproject-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[dev]"
  rm -f .venv/.pyproject-*
  touch "$stamp"
fi
