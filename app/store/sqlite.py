"""The store in a SQLite file (STATE_PATH): the embedded default, surviving a restart.

Records, opt-outs, Idempotency-Key entries, webhook token ids and the credentials that
passed the failed-key brake keep the rules of MemoryStore (memory.py): the same functions
decide (merge_sent, apply_status, added_opt_out, may_lift, claim_from), with the same
bounds (retention, MAX_MESSAGES, IDEMPOTENCY_MAX_MB, token and known-key counts).

How it keeps them:
- stdlib sqlite3 in WAL mode, so that readers never wait for the writer; a busy timeout of
  BUSY_TIMEOUT_S for another process's write (a worker being replaced, a second process on
  the file); a small pool of connections, each used for one transaction at a time.
- Every change is one short write transaction (BEGIN IMMEDIATE: the write lock at once, so
  two writers never deadlock upgrading a read). Rows past their expiry, or past a bound, are
  purged a few at a time by the writes that add rows (PURGE_BATCH), never by a long
  transaction under a request, nor by a sweep over a table.
- `synchronous=NORMAL`: a commit survives the process being killed (the WAL is in the file
  system's cache), not a power cut. Opt-outs are the exception: their commits are synced
  to disk (`synchronous=FULL`), since a forgotten STOP is a compliance failure.
- The schema carries its version (PRAGMA user_version) and is created or migrated at
  start-up, in one transaction per version; a file from a newer version refuses to start
  (NewerSchema, naming both versions), since this code cannot know what it would break.

gevent: the worker monkey-patches the standard library, but sqlite3 is C code that gevent
cannot make cooperative, so every call blocks the whole worker (its event loop) while it
runs. That is why transactions stay short (tens of microseconds: a few indexed statements,
no network, no sleeping inside one) and why nothing here scans a table. The waits that
could be long are bounded: another process's write lock (BUSY_TIMEOUT_S, then 503), an
opt-out's commit synced to disk (rare), and the WAL's automatic checkpoint (every 1000 pages,
about 4 MB of writes or 100 sends: a few milliseconds, more on a slow disk). The checkpoint
stays on the loop on purpose: run beside it in a thread, it never catches up with a loop that
keeps writing, so the WAL is never restarted and grows without bound (40 MB in 600 sends).

Failure fails closed, as with Redis: a call the file cannot serve raises StorageUnavailable
(503 storage-unavailable on sends, 503 on webhooks, `storage: unavailable` on /health), with
one log line when the store becomes unusable and one when it is usable again.
- A read-only file or folder (or a lock held too long, an I/O error): each call still tries,
  and the first write that succeeds ends it.
- A full disk or a corrupt file refuses every call, reads too (STICKY): a write that happens
  to fit, or a table whose pages are sound, proves nothing. A full disk ends once the file may
  grow again (MIN_FREE_BYTES free); a corrupt file when the service restarts on a good one.
- A file that could not be set up at start-up is tried again at most every RETRY_S.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from ..domain.claims import Claim, claim_from
from ..domain.optouts import OptIn, OptOut, OptOutSource, added_opt_out, may_lift
from ..domain.records import Record, apply_status, merge_sent
from .contract import StorageUnavailable
from .memory import EXPIRED_PER_BEGIN, MAX_KNOWN_KEYS, MAX_WEBHOOK_TOKENS, request_entry_size
from .sqlite_schema import NewerSchema, migrate

logger = logging.getLogger("sms_service")

BUSY_TIMEOUT_S = 1.0  # at most this long waiting for another process's write, then 503
POOL_SIZE = 4  # idle connections kept; under gevent one is enough, threads may use more
RETRY_S = 1.0  # a file that could not be set up is tried again at most this often
PURGE_BATCH = EXPIRED_PER_BEGIN  # expired rows one write forgets at most: each adds one row
EXCESS_BATCH = 64  # rows past a bound one write forgets at most (a lowered MAX_MESSAGES drains)
NOTE_AGAIN_S = 60  # a key's note at an address is rewritten at most this often (ttl: 24 h)
MIN_FREE_BYTES = 16 * 1024 * 1024  # free disk space that ends a full disk's refusal
# Failures that refuse every call until they are disproved, since a write that happens to
# succeed (a row rewritten in place, a table whose pages are sound) proves nothing: a full disk
# until the file may grow again, a corrupt file until the service restarts on a good one.
STICKY = ("SQLITE_FULL", "SQLITE_CORRUPT", "SQLITE_NOTADB")


def _is_storage_error(exc: sqlite3.Error) -> bool:
    """A problem of the file or the disk (read-only, full, corrupt, locked, I/O), as opposed
    to a mistake in this code (a bad statement, a closed connection), which stays a crash."""
    return isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError) or (
        type(exc) is sqlite3.DatabaseError  # SQLITE_CORRUPT, SQLITE_NOTADB
    )


def _fail_closed(method):
    """Turn a storage failure into StorageUnavailable (503), remembered for /health."""

    @functools.wraps(method)
    def wrapped(self: SQLiteStore, *args, **kwargs):
        self._check_usable()
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            if not _is_storage_error(exc):
                raise
            self._failed(exc)
            raise StorageUnavailable() from exc

    return wrapped


class SQLiteStore:
    """Store in a SQLite file. Every public method fails closed with StorageUnavailable."""

    kind = "sqlite"

    def __init__(
        self,
        path: str,
        retention_s: int,
        max_messages: int,
        clock: Callable[[], float] = time.time,
        max_answer_bytes: int = 64 * 1024 * 1024,
        max_webhook_tokens: int = MAX_WEBHOOK_TOKENS,
        max_pages: int | None = None,  # a cap on the file's size (tests: a full disk)
    ):
        self.path, self.retention_s, self.max_messages = path, retention_s, max_messages
        self.clock, self.max_answer_bytes = clock, max_answer_bytes
        self.max_webhook_tokens, self.max_pages = max_webhook_tokens, max_pages
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # the pool, and the state below
        self._ready = False
        self._next_attempt = 0.0  # time.monotonic() before which set-up is not tried again
        self._failure: tuple[str, str] | None = None  # (SQLite's error name, its message)
        self._set_up_once(at_start=True)

    # --- records ------------------------------------------------------------------------

    def save_sent(self, record: Record) -> None:
        self._update(str(record["message_uuid"]), lambda existing: merge_sent(existing, record))

    def apply_status(self, event: dict[str, object]) -> Record:
        return self._update(
            str(event["message_uuid"]), lambda existing: apply_status(existing, event)
        )

    @_fail_closed
    def get_message(self, message_uuid: str) -> Record | None:
        with self._connection() as db:
            row = db.execute(
                "SELECT record FROM messages WHERE uuid = ? AND stored_at >= ?",
                (message_uuid, self.clock() - self.retention_s),
            ).fetchone()
        return json.loads(row[0]) if row else None

    @_fail_closed
    def _update(self, message_uuid: str, change: Callable[[Record | None], Record]) -> Record:
        """Read, change and write one record in one transaction; then purge a few old ones."""
        now = self.clock()
        with self._write() as db:
            row = db.execute(
                "SELECT record, stored_at FROM messages WHERE uuid = ?", (message_uuid,)
            ).fetchone()
            live = row is not None and row[1] >= now - self.retention_s
            record = change(json.loads(row[0]) if live else None)
            if live:
                db.execute(
                    "UPDATE messages SET record = ? WHERE uuid = ?",
                    (json.dumps(record), message_uuid),
                )
            else:
                if row is not None:  # past the retention, not yet purged
                    db.execute("DELETE FROM messages WHERE uuid = ?", (message_uuid,))
                db.execute(
                    "INSERT INTO messages (uuid, stored_at, record) VALUES (?, ?, ?)",
                    (message_uuid, now, json.dumps(record)),
                )
            _purge(db, "messages", "stored_at", "seq", now - self.retention_s)
            _trim(db, "messages", "seq", "seq", self.max_messages)
        return record

    # --- opt-outs -----------------------------------------------------------------------

    @_fail_closed
    def opt_out(self, number: str, since: str, source: OptOutSource) -> OptOut:
        with self._write(synced=True) as db:
            entry = added_opt_out(_opt_out_entry(db, number), since, source)
            db.execute(
                "INSERT INTO opt_outs VALUES (?, ?, ?) ON CONFLICT (number) DO UPDATE"
                " SET since = excluded.since, source = excluded.source",
                (number, entry.since, entry.source),
            )
        return entry

    @_fail_closed
    def opt_in(self, number: str, by: OptOutSource, override: bool = False) -> OptIn:
        with self._write(synced=True) as db:
            found = _opt_out_entry(db, number)
            if found is None or not may_lift(found, by, override):
                return OptIn(found, removed=False)
            db.execute("DELETE FROM opt_outs WHERE number = ?", (number,))
        return OptIn(found, removed=True)

    @_fail_closed
    def opt_out_entry(self, number: str) -> OptOut | None:
        with self._connection() as db:
            return _opt_out_entry(db, number)

    def opted_out_since(self, number: str) -> str | None:
        entry = self.opt_out_entry(number)
        return entry.since if entry else None

    # --- the failed-key brake's known credentials, and webhook token ids ------------------

    @_fail_closed
    def note_key_at(self, client_ip: str, name: str, ttl_s: int) -> None:
        """Every authenticated request notes its key: a note younger than a minute (or a
        hundredth of its ttl) is left as it is, a read instead of a write."""
        now = self.clock()
        with self._connection() as db:
            row = db.execute(
                "SELECT expires_at FROM known_keys WHERE client_ip = ? AND name = ?",
                (client_ip, name),
            ).fetchone()
        if row is not None and row[0] >= now + ttl_s - min(NOTE_AGAIN_S, ttl_s / 100):
            return
        with self._write() as db:
            db.execute(
                "INSERT INTO known_keys VALUES (?, ?, ?) ON CONFLICT (client_ip, name)"
                " DO UPDATE SET expires_at = excluded.expires_at",
                (client_ip, name, now + ttl_s),
            )
            _purge(db, "known_keys", "expires_at", "client_ip, name", now)
            # Past the bound, those that would expire soonest go first.
            _trim(db, "known_keys", "expires_at", "client_ip, name", MAX_KNOWN_KEYS)

    @_fail_closed
    def key_known_at(self, client_ip: str, name: str) -> bool:
        with self._connection() as db:
            row = db.execute(
                "SELECT 1 FROM known_keys WHERE client_ip = ? AND name = ? AND expires_at > ?",
                (client_ip, name, self.clock()),
            ).fetchone()
        return row is not None

    @_fail_closed
    def use_webhook_token(self, jti: str, ttl_s: int) -> bool:
        now = self.clock()
        with self._write() as db:
            _purge(db, "webhook_tokens", "expires_at", "jti", now)
            used = db.execute(  # a new id, or one whose earlier use has expired
                "INSERT INTO webhook_tokens VALUES (?, ?) ON CONFLICT (jti) DO UPDATE"
                " SET expires_at = excluded.expires_at WHERE webhook_tokens.expires_at <= ?",
                (jti, now + ttl_s, now),
            ).rowcount
            _trim(db, "webhook_tokens", "expires_at", "jti", self.max_webhook_tokens)
        return used == 1

    @_fail_closed
    def forget_webhook_token(self, jti: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM webhook_tokens WHERE jti = ?", (jti,))

    # --- Idempotency-Key entries ----------------------------------------------------------

    @_fail_closed
    def begin_request(self, key: str, fingerprint: str, lock_s: int) -> Claim:
        now = self.clock()
        with self._write() as db:
            row = db.execute(
                "SELECT entry, expires_at FROM requests WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[1] > now:
                return claim_from(json.loads(row[0]), fingerprint)
            if row is not None:  # expired, not yet purged
                db.execute("DELETE FROM requests WHERE key = ?", (key,))
            self._make_room(db, now)
            token = uuid.uuid4().hex
            entry = {"state": "in_flight", "token": token, "fingerprint": fingerprint}
            db.execute(
                "INSERT INTO requests (key, expires_at, entry, size) VALUES (?, ?, ?, ?)",
                (key, now + lock_s, json.dumps(entry), request_entry_size(key, entry)),
            )
        return Claim("started", token=token)

    @_fail_closed
    def finish_request(self, key: str, token: str, response: dict, ttl_s: int) -> None:
        now = self.clock()
        with self._write() as db:
            current = _live_request(db, key, now)
            if current is not None and current["token"] == token:
                done = {**current, "state": "done", "response": response}
                db.execute(
                    "UPDATE requests SET expires_at = ?, entry = ?, size = ? WHERE key = ?",
                    (now + ttl_s, json.dumps(done), request_entry_size(key, done), key),
                )

    @_fail_closed
    def release_request(self, key: str, token: str) -> None:
        with self._write() as db:
            current = _live_request(db, key, self.clock())
            if current is not None and current["token"] == token:
                db.execute("DELETE FROM requests WHERE key = ?", (key,))

    def _make_room(self, db: sqlite3.Connection, now: float) -> None:
        """Before a new key: forget a few expired entries, then the oldest while the entries
        are at max_messages or past max_answer_bytes (a batch at most)."""
        _purge(db, "requests", "expires_at", "seq", now)
        for _ in range(EXCESS_BATCH):
            rows, size = db.execute(
                "SELECT rows, bytes FROM counts WHERE name = 'requests'"
            ).fetchone()
            if rows == 0 or (rows < self.max_messages and size <= self.max_answer_bytes):
                return
            db.execute("DELETE FROM requests WHERE seq = (SELECT min(seq) FROM requests)")

    # --- health, start-up and connections ---------------------------------------------------

    def ping(self) -> bool:
        """Tell whether the file takes writes: rewrite the health row (after a failure that
        refuses every call, only once it is disproved)."""
        try:
            self._check_usable()
            with self._write() as db:
                db.execute(
                    "INSERT INTO health VALUES (1, ?) ON CONFLICT (id)"
                    " DO UPDATE SET checked_at = excluded.checked_at",
                    (self.clock(),),
                )
        except StorageUnavailable:
            return False
        except sqlite3.Error as exc:
            if not _is_storage_error(exc):
                raise
            self._failed(exc)
            return False
        return True

    def close(self) -> None:
        """Close the idle connections (tests; a worker's end closes them anyway)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()

    def _set_up_once(self, at_start: bool = False) -> None:
        """Create or migrate the schema, once; after a failure, again at most every RETRY_S
        (StorageUnavailable in between). NewerSchema stops the start-up."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            if time.monotonic() < self._next_attempt:
                raise StorageUnavailable()
            self._next_attempt = time.monotonic() + RETRY_S
        try:
            with self._connection() as db:
                migrate(db, self.path)
        except NewerSchema as exc:
            if at_start:
                raise
            self._failed(exc)
            raise StorageUnavailable() from exc
        except sqlite3.Error as exc:
            if not _is_storage_error(exc):
                raise
            self._failed(exc)
            if at_start:
                return  # the service starts, and answers 503 until the file is usable
            raise StorageUnavailable() from exc
        self._ready = True
        self._recovered(sticky_too=True)  # a file replaced by a good one, say

    def _check_usable(self) -> None:
        """Set the file up if need be; refuse (StorageUnavailable) while a sticky failure holds."""
        self._set_up_once()
        failure = self._failure
        if failure is None or not failure[0].startswith(STICKY):
            return
        if failure[0].startswith("SQLITE_FULL") and self._room_left():
            self._recovered(sticky_too=True)
            return
        raise StorageUnavailable()

    def _room_left(self) -> bool:
        """After a full disk: whether the file may grow again (below its page cap, and
        MIN_FREE_BYTES free on its disk)."""
        try:
            with self._connection() as db:
                pages = db.execute("PRAGMA page_count").fetchone()[0]
                most = db.execute("PRAGMA max_page_count").fetchone()[0]
            disk = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        except (sqlite3.Error, OSError):
            return False
        return pages < most and disk.f_bavail * disk.f_frsize >= MIN_FREE_BYTES

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of the pool for one transaction; one that failed is closed."""
        with self._lock:
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = self._connect()
        try:
            yield db
        except BaseException:
            db.close()
            raise
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(db)
                return
        db.close()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; each one is begun here, explicitly.
        db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            if self.max_pages is not None:
                db.execute(f"PRAGMA max_page_count = {int(self.max_pages)}")
        except BaseException:
            db.close()
            raise
        return db

    @contextlib.contextmanager
    def _write(self, synced: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on the way out (synced to disk if `synced`). Its
        success proves the file usable again (but for a sticky failure: see _check_usable)."""
        with self._connection() as db:  # closed, not reused, after a failure
            if synced:
                db.execute("PRAGMA synchronous = FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            if synced:
                db.execute("PRAGMA synchronous = NORMAL")
        if self._failure is not None:
            self._recovered()

    def _failed(self, exc: Exception) -> None:
        """Remember the failure for /health; log it once, when the store becomes unusable.
        Close the idle connections: one opened on a read-only file stays read-only."""
        self.close()
        name = getattr(exc, "sqlite_errorname", type(exc).__name__)
        with self._lock:
            first = self._failure is None
            if first or not self._failure[0].startswith(STICKY):  # a sticky one stays
                self._failure = (name, str(exc))
        if first:
            logger.error(
                "state file unusable: sends and webhooks are refused (503) until it is fixed",
                extra={"fields": {"state_path": self.path, "error": name, "reason": str(exc)}},
            )

    def _recovered(self, sticky_too: bool = False) -> None:
        """Forget the failure (a sticky one only when disproved); log that, once."""
        with self._lock:
            was = self._failure
            if was is None or (was[0].startswith(STICKY) and not sticky_too):
                return
            self._failure = None
        logger.info("state file usable again", extra={"fields": {"state_path": self.path}})


def _opt_out_entry(db: sqlite3.Connection, number: str) -> OptOut | None:
    row = db.execute("SELECT since, source FROM opt_outs WHERE number = ?", (number,)).fetchone()
    return OptOut(row[0], row[1]) if row else None


def _live_request(db: sqlite3.Connection, key: str, now: float) -> dict | None:
    row = db.execute(
        "SELECT entry FROM requests WHERE key = ? AND expires_at > ?", (key, now)
    ).fetchone()
    return json.loads(row[0]) if row else None


def _purge(db: sqlite3.Connection, table: str, by: str, key: str, before: float) -> None:
    """Forget up to PURGE_BATCH rows of `table` whose `by` (an indexed time) is before `before`."""
    db.execute(
        f"DELETE FROM {table} WHERE ({key}) IN"  # noqa: S608 - our own names, never input
        f" (SELECT {key} FROM {table} WHERE {by} < ? ORDER BY {by} LIMIT {PURGE_BATCH})",
        (before,),
    )


def _trim(db: sqlite3.Connection, table: str, oldest_by: str, key: str, most: int) -> None:
    """Forget the rows of `table` past `most`, first by `oldest_by`, up to EXCESS_BATCH."""
    rows = db.execute("SELECT rows FROM counts WHERE name = ?", (table,)).fetchone()[0]
    excess = min(rows - most, EXCESS_BATCH)
    if excess > 0:
        db.execute(
            f"DELETE FROM {table} WHERE ({key}) IN"  # noqa: S608 - our own names, never input
            f" (SELECT {key} FROM {table} ORDER BY {oldest_by} LIMIT {excess})"
        )
