"""Process-local fan-out of what the database commits: events for streams, and wake-ups for
claimers waiting on new work. Fed in-process on SQLite, by LISTEN/NOTIFY on PostgreSQL."""
