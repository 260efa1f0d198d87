"""Database URLs: `sqlite:///conveyor.db` (relative), `sqlite:////abs/path.db`, or
`postgresql://user:password@host:port/dbname`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from conveyor.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    kind: Literal["sqlite", "postgresql"]
    url: str

    @classmethod
    def parse(cls, url: str) -> DatabaseURL:
        if url.startswith("sqlite:///"):
            if len(url) == len("sqlite:///"):
                raise InvalidInput("database_url", "a SQLite URL needs a file path")
            return cls("sqlite", url)
        if url.startswith(("postgresql://", "postgres://")):
            return cls("postgresql", "postgresql://" + url.split("://", 1)[1])
        raise InvalidInput(
            "database_url", "must start with sqlite:/// or postgresql:// (got an unknown scheme)"
        )

    @property
    def sqlite_path(self) -> Path:
        assert self.kind == "sqlite"
        return Path(self.url[len("sqlite:///") :])

    @property
    def sqlalchemy_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        return "postgresql+asyncpg://" + self.url.split("://", 1)[1]

    def redacted(self) -> str:
        """The URL with any password replaced, for logs and error messages."""
        if self.kind == "sqlite" or "@" not in self.url:
            return self.url
        scheme, rest = self.url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else self.url
