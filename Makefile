.PHONY: serve test bench

# Install and run Conveyor on the embedded SQLite default (API, dashboard, workers).
serve:
	./scripts/serve.sh

# Install everything and run the whole test suite (SQLite and a real PostgreSQL).
test:
	./scripts/test.sh

# Run the benchmark harness against the peers (see docs/benchmarks.md).
bench:
	./scripts/bench.sh
