#!/usr/bin/env bash
# Install Conveyor into .venv and run it on the embedded default: a SQLite file
# (./conveyor.db), the API and dashboard on http://127.0.0.1:8080, and in-process workers
# with the example handlers. Extra arguments go to `conveyor serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  if ! python3 -c 'import ensurepip' 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    else
      echo "python3 cannot create a virtualenv: install python3-venv (as root)" >&2
      exit 1
    fi
  fi
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e .

exec .venv/bin/conveyor serve --migrate --workers 4 \
  --handlers conveyor.worker.examples:handlers "$@"
