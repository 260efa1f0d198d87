"""The systems under test: Conveyor (in-process, over HTTP, on SQLite) and its peers."""
