#!/usr/bin/env bash
# Benchmark Conveyor against its peers (Procrastinate, PgQueuer, RQ) on this machine, in
# one run: installs Conveyor and the peers (bench/requirements.txt) into .venv, installs
# redis-server, postgresql-15 and wrk with apt when missing (as root), then runs the harness,
# which starts and stops its own PostgreSQL and Redis. Arguments go to the harness:
#
#   ./scripts/bench.sh                         # every scenario, 3 runs each (~35 min)
#   ./scripts/bench.sh --quick                 # small counts, 1 run (< 1 min): a smoke test
#   ./scripts/bench.sh --only drain latency --jobs 20000 --repeat 5
#
# The table goes to stdout; every run's figures to bench/results/latest.json (--out FILE).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check \
  -c constraints.txt -e . -r bench/requirements.txt

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql-15)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing system packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing system packages (install as root): ${missing[*]}" >&2
    echo "(without redis-server, RQ is reported unavailable; without wrk, conveyor-http;" >&2
    echo " PostgreSQL is required)" >&2
  fi
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m bench.run "$@"
