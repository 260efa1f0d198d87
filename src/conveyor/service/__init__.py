"""Use cases: what clients, workers and operators can do, on top of the store."""
