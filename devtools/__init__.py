"""What the test suite and the benchmark harness share: development tools, not shipped."""
