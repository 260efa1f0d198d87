#!/usr/bin/env bash
# Install everything the suite needs and run it: lint, types, then every test on SQLite
# and on a real PostgreSQL server that the suite starts and stops itself.
# System packages come from apt (as root) when missing: postgresql-15, chromium and
# python3-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql-15)
command -v chromium >/dev/null || missing+=(chromium)
[ -x .venv/bin/python ] || python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing system packages (install as root): ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# The benchmark peers too: mypy checks bench/ against their real types.
.venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]' \
  -r bench/requirements.txt

echo "== ruff"
.venv/bin/ruff check src tests bench devtools
.venv/bin/ruff format --check src tests bench devtools
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
mkdir -p test-artifacts
# Tests run in CONVEYOR_TEST_WORKERS processes (3 by default; 0 runs them in this one),
# each with its own PostgreSQL server: most of a test's time is waiting, not CPU. The slow
# ones are collected first (tests/conftest.py), and a worker that runs out of tests steals
# from the others' queues, so none ends the run alone on a long test.
exec .venv/bin/pytest -n "${CONVEYOR_TEST_WORKERS:-3}" --dist worksteal "$@"
