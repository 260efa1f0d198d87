"""The suite's own PostgreSQL server: test processes start theirs side by side, so a free
port another takes before the server binds it is a reason to pick another, not to fail."""

from __future__ import annotations

import socket

import pytest
from devtools import postgres
from devtools.postgres import PostgresServer


def test_a_server_whose_free_port_was_taken_meanwhile_starts_on_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real_free_port = postgres.free_port
        monkeypatch.setattr(postgres, "free_port", lambda: next(ports, None) or real_free_port())
        with PostgresServer() as server:
            assert server.port != busy
            with socket.create_connection(("127.0.0.1", server.port), timeout=5):
                pass


def test_a_port_asked_for_is_not_swapped_for_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(postgres.PortTaken), PostgresServer(port=taken.getsockname()[1]):
            pass
