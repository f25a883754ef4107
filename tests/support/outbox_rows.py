"""The notification outbox as whoever reads the database sees it (a DBA, a backup): for the tests that
check what a row keeps in clear."""

from __future__ import annotations

from sqlalchemy import create_engine, text

__all__ = ["raw_rows"]


def raw_rows(database_url: str) -> str:
    """The outbox table, every column of every row, one line a row."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            return "\n".join(" ".join(map(str, row)) for row in db.execute(text("SELECT * FROM outbox_events")))
    finally:
        engine.dispose()
