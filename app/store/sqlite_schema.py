"""The SQLite state file's schema: its version, the migrations to it, and the refusal of a
file from a newer version (sqlite.py, the store, opens files through `migrate`).

A released version is never edited: a change of schema is a new entry in MIGRATIONS, run in
one transaction at start-up. gunicorn's master calls `check_schema` before any worker starts,
so a newer file stops the boot with one error.
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse

from ..settings import ConfigError

SCHEMA_VERSION = 1


def _counted(table: str, size: str | None = None) -> tuple[str, ...]:
    """Triggers keeping `counts` (rows, and bytes from the `size` column) for `table`, so that
    a bound is checked without counting the table. Version 1 is made of its output: change it
    only along with a new version."""
    # S608: the names are this module's own, never input.
    plus = f", bytes = bytes + NEW.{size}" if size else ""
    minus = f", bytes = bytes - OLD.{size}" if size else ""
    count = f"UPDATE counts SET rows = rows + 1{plus} WHERE name = '{table}'"  # noqa: S608
    uncount = f"UPDATE counts SET rows = rows - 1{minus} WHERE name = '{table}'"  # noqa: S608
    statements = [
        f"CREATE TRIGGER {table}_added AFTER INSERT ON {table} BEGIN {count}; END",
        f"CREATE TRIGGER {table}_removed AFTER DELETE ON {table} BEGIN {uncount}; END",
    ]
    if size:
        resize = f"UPDATE counts SET bytes = bytes - OLD.{size} + NEW.{size} WHERE name = '{table}'"  # noqa: S608
        statements.append(
            f"CREATE TRIGGER {table}_resized AFTER UPDATE OF {size} ON {table} BEGIN {resize}; END"
        )
    return tuple(statements)


# The statements that bring a file from the version before to each version, run in one
# transaction. A released version is never edited: a change of schema is a new version.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        # seq: the order records were first kept; past MAX_MESSAGES the oldest go first.
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
        " stored_at REAL NOT NULL, record TEXT NOT NULL)",
        "CREATE INDEX messages_by_age ON messages (stored_at)",
        "CREATE TABLE opt_outs (number TEXT PRIMARY KEY, since TEXT NOT NULL,"
        " source TEXT CHECK (source IN ('sms', 'api'))) WITHOUT ROWID",
        # seq: the order keys were taken; past a bound the oldest go first.
        "CREATE TABLE requests (seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,"
        " expires_at REAL NOT NULL, entry TEXT NOT NULL, size INTEGER NOT NULL)",
        "CREATE INDEX requests_by_expiry ON requests (expires_at)",
        "CREATE TABLE webhook_tokens (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL)"
        " WITHOUT ROWID",
        "CREATE INDEX webhook_tokens_by_expiry ON webhook_tokens (expires_at)",
        "CREATE TABLE known_keys (client_ip TEXT NOT NULL, name TEXT NOT NULL,"
        " expires_at REAL NOT NULL, PRIMARY KEY (client_ip, name)) WITHOUT ROWID",
        "CREATE INDEX known_keys_by_expiry ON known_keys (expires_at)",
        "CREATE TABLE counts (name TEXT PRIMARY KEY, rows INTEGER NOT NULL,"
        " bytes INTEGER NOT NULL) WITHOUT ROWID",
        "INSERT INTO counts VALUES ('messages', 0, 0), ('requests', 0, 0),"
        " ('webhook_tokens', 0, 0), ('known_keys', 0, 0)",
        *_counted("messages"),
        *_counted("requests", size="size"),
        *_counted("webhook_tokens"),
        *_counted("known_keys"),
        # One row that /health rewrites: proof that the file takes writes.
        "CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at REAL NOT NULL)",
    ),
}


class NewerSchema(ConfigError):
    """The file was written by a newer version of the service: refuse to start."""

    def __init__(self, path: str, found: int):
        super().__init__(
            f"STATE_PATH {path} has schema version {found}, newer than this version of the "
            f"service knows ({SCHEMA_VERSION}): run the newer version, or point STATE_PATH "
            "at another file"
        )


def check_schema(path: str) -> None:
    """Raise NewerSchema when the file at `path` is from a newer version; create nothing.
    For gunicorn's master, so that the boot stops with one error before any worker starts."""
    try:
        uri = f"file:{urllib.parse.quote(path)}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            found = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error:
        return  # no file yet, or one the workers will report as unusable
    if found > SCHEMA_VERSION:
        raise NewerSchema(path, found)


def migrate(db: sqlite3.Connection, path: str) -> None:
    """Bring the schema to SCHEMA_VERSION, one transaction per version; refuse a newer one."""
    found = db.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise NewerSchema(path, found)
    for version in range(found + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated since the first look: look again, locked.
            if db.execute("PRAGMA user_version").fetchone()[0] < version:
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
    # Read every table once: a file whose schema or tables cannot be read fails here, at start.
    for table in ("messages", "opt_outs", "requests", "webhook_tokens", "known_keys", "counts"):
        db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()  # noqa: S608 - our own names
