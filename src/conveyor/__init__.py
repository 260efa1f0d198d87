"""Conveyor: a durable, concurrency-safe job runner (SQLite embedded, PostgreSQL at scale)."""

__version__ = "0.1.0"
