"""The SQLite store (STATE_PATH), beyond the contract every store keeps
(tests/test_store_contract.py): what a restart finds, the schema's version, purges in small
batches, the durable default and its settings, and failing closed when the file cannot be
used: read-only, full, corrupt, or from a newer version (issue 14)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from pathlib import Path

import pytest
import responses

from app import store as store_factory
from app.domain.optouts import OptIn, OptOut
from app.settings import ConfigError, Settings
from app.store import MemoryStore, build_store, sqlite_schema
from app.store.redis_store import RedisStore
from app.store.sqlite import EXCESS_BATCH, PURGE_BATCH, SQLiteStore
from app.store.sqlite_schema import SCHEMA_VERSION, NewerSchema, check_schema
from tests.conftest import AUTH, VALID_BODY, VONAGE_SMS_URL
from tests.test_store_contract import ANSWER, FINGERPRINT, FakeClock, sent
from tests.webhook_signing import SIGNATURE_SECRET, inbound_body, signed_post

ROOT = Path(__file__).resolve().parents[1]
NUMBER, JAN = "+14155550100", "2026-01-01T00:00:00Z"
RECORD = "bbbbbbbb-0000-4000-8000-000000000001"  # the uuid of the contract suite's sent()
NOBODY = 65534


@pytest.fixture
def path(tmp_path) -> str:
    return str(tmp_path / "state.db")


@pytest.fixture
def open_store(path):
    """Open stores on one file, as successive starts of the service would; close them after."""
    opened = []

    def open_(**options) -> SQLiteStore:
        options = {"retention_s": 3600, "max_messages": 1000, **options}
        opened.append(SQLiteStore(path, **options))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def read(path: str, sql: str):
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchone()[0]


def rows(path: str, table: str) -> int:
    return read(path, f"SELECT count(*) FROM {table}")  # noqa: S608 - the tests' own names


# --- what a restart finds, and the schema ----------------------------------------------------


def test_a_restart_finds_everything_the_last_start_kept(open_store):
    """Opt-outs, kept answers, records, webhook token ids and known keys, in a new store."""
    clock = FakeClock()
    before = open_store(clock=clock)
    before.opt_out(NUMBER, JAN, "sms")
    claim = before.begin_request("alpha:k1", FINGERPRINT, lock_s=30)
    before.finish_request("alpha:k1", claim.token, ANSWER, ttl_s=60)
    before.save_sent(sent())
    before.use_webhook_token("jti-1", ttl_s=60)
    before.note_key_at("2001:db8::1", "alpha", ttl_s=60)
    before.close()

    after = open_store(clock=clock)

    assert after.opt_out_entry(NUMBER) == OptOut(JAN, "sms")
    assert after.begin_request("alpha:k1", FINGERPRINT, lock_s=30).response == ANSWER
    assert after.get_message(RECORD)["api_key"] == "alpha"
    assert after.use_webhook_token("jti-1", ttl_s=60) is False
    assert after.key_known_at("2001:db8::1", "alpha") is True


def test_a_new_file_gets_the_schema_at_its_version_in_wal_mode(open_store, path):
    open_store()

    assert read(path, "PRAGMA user_version") == SCHEMA_VERSION
    assert read(path, "PRAGMA journal_mode") == "wal"


def test_an_older_file_is_migrated_at_start_and_keeps_its_rows(open_store, path, monkeypatch):
    """A next version's statements run once, in order, on a file of this version."""
    open_store().opt_out(NUMBER, JAN, "api")
    monkeypatch.setattr(sqlite_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(
        sqlite_schema.MIGRATIONS,
        SCHEMA_VERSION + 1,
        ("ALTER TABLE opt_outs ADD COLUMN note TEXT", "UPDATE opt_outs SET note = 'migrated'"),
    )

    migrated = open_store()

    assert read(path, "PRAGMA user_version") == SCHEMA_VERSION + 1
    assert read(path, "SELECT note FROM opt_outs") == "migrated"
    assert migrated.opt_out_entry(NUMBER) == OptOut(JAN, "api")


def newer_file(open_store, path: str) -> None:
    open_store().close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


NEWER = (
    f"has schema version {SCHEMA_VERSION + 1}, newer than this version of the service knows "
    rf"\({SCHEMA_VERSION}\)"
)


def test_a_file_from_a_newer_version_refuses_to_start_naming_both_versions(open_store, path):
    newer_file(open_store, path)

    with pytest.raises(NewerSchema, match=NEWER):
        open_store()
    with pytest.raises(NewerSchema, match=NEWER):
        check_schema(path)  # gunicorn's master, before any worker starts
    assert read(path, "PRAGMA user_version") == SCHEMA_VERSION + 1  # untouched


def test_the_app_refuses_to_start_on_a_newer_file(open_store, path, make_app, settings):
    newer_file(open_store, path)

    with pytest.raises(ConfigError, match=NEWER):
        make_app(settings, state_path=path)


def test_the_masters_check_creates_no_file(tmp_path):
    check_schema(str(tmp_path / "absent.db"))

    assert list(tmp_path.iterdir()) == []


# --- short transactions: purges and bounds in batches ------------------------------------------


def test_a_write_forgets_a_few_expired_records_at_a_time(open_store, path):
    """Never one long transaction under a request: each write purges PURGE_BATCH at most, and
    the expired drain as writes come. An expired record is not served meanwhile."""
    clock = FakeClock()
    store = open_store(clock=clock, retention_s=60)
    for n in range(100):
        store.save_sent(sent(uuid=f"old-{n}"))
    clock.now += 61
    assert store.get_message("old-50") is None

    store.save_sent(sent(uuid="new-0"))
    assert rows(path, "messages") == 101 - PURGE_BATCH

    for n in range(1, 20):
        store.save_sent(sent(uuid=f"new-{n}"))
    assert rows(path, "messages") == 20


def test_a_new_key_forgets_a_few_expired_answers_at_a_time(open_store, path):
    clock = FakeClock()
    store = open_store(clock=clock)
    for n in range(30):
        store.begin_request(f"alpha:old-{n}", FINGERPRINT, lock_s=30)
    clock.now += 31

    store.begin_request("beta:k0", FINGERPRINT, lock_s=30)
    assert rows(path, "requests") == 31 - PURGE_BATCH
    for n in range(1, 6):
        store.begin_request(f"beta:k{n}", FINGERPRINT, lock_s=30)
    assert rows(path, "requests") == 6


def test_a_lowered_max_messages_drains_over_several_writes(open_store, path):
    """A restart with a smaller MAX_MESSAGES does not delete the excess in one transaction."""
    big = open_store(max_messages=1000)
    for n in range(200):
        big.save_sent(sent(uuid=f"m{n}"))
    big.close()
    small = open_store(max_messages=10)

    small.save_sent(sent(uuid="next-0"))
    assert rows(path, "messages") == 201 - EXCESS_BATCH
    for n in range(1, 5):
        small.save_sent(sent(uuid=f"next-{n}"))
    assert rows(path, "messages") == 10
    assert small.get_message("m194") is None and small.get_message("m195") is not None


def test_the_counts_that_bound_the_tables_follow_them(open_store, path):
    """The bounds read a count kept by triggers, not a count of the table: they must agree
    through inserts, in-place updates, deletions and purges."""
    clock = FakeClock()
    store = open_store(clock=clock, max_messages=5, max_webhook_tokens=3)
    for n in range(8):
        store.save_sent(sent(uuid=f"m{n}"))
        claim = store.begin_request(f"alpha:k{n}", FINGERPRINT, lock_s=30)
        store.finish_request(f"alpha:k{n}", claim.token, ANSWER, ttl_s=60)
        store.use_webhook_token(f"jti-{n}", ttl_s=10)
        store.note_key_at("2001:db8::1", "alpha", ttl_s=10)
        store.note_key_at(f"2001:db8::{n + 2}", "alpha", ttl_s=10)
    store.release_request("alpha:k7", store.begin_request("alpha:k8", FINGERPRINT, 30).token)
    store.forget_webhook_token("jti-7")
    clock.now += 11
    store.use_webhook_token("jti-new", ttl_s=10)

    for table in ("messages", "requests", "webhook_tokens", "known_keys"):
        counted = read(path, f"SELECT rows FROM counts WHERE name = '{table}'")  # noqa: S608
        assert counted == rows(path, table), table
    kept_bytes = read(path, "SELECT bytes FROM counts WHERE name = 'requests'")
    assert kept_bytes == read(path, "SELECT sum(size) FROM requests")


def test_opt_outs_are_synced_to_disk_and_other_writes_are_not(open_store, monkeypatch):
    """A STOP must survive a power cut (synchronous=FULL for its commit); the other writes
    survive a killed process, which synchronous=NORMAL in WAL mode is enough for."""
    statements: list[str] = []
    connect = SQLiteStore._connect

    def traced(self):
        db = connect(self)
        db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(SQLiteStore, "_connect", traced)
    store = open_store()

    def commits_synced(do) -> bool:
        del statements[:]
        do()
        begin = statements.index("BEGIN IMMEDIATE")
        return statements[:begin][-1:] == ["PRAGMA synchronous = FULL"] and statements[-1] == (
            "PRAGMA synchronous = NORMAL"
        )

    assert commits_synced(lambda: store.opt_out(NUMBER, JAN, "sms"))
    assert commits_synced(lambda: store.opt_in(NUMBER, "sms"))
    assert not commits_synced(lambda: store.save_sent(sent()))
    assert not commits_synced(lambda: store.begin_request("alpha:k", FINGERPRINT, 30))


def test_a_refused_opt_in_leaves_the_entry(open_store):
    store = open_store()
    store.opt_out(NUMBER, JAN, "sms")

    assert store.opt_in(NUMBER, "api") == OptIn(OptOut(JAN, "sms"), removed=False)
    assert open_store().opt_out_entry(NUMBER) == OptOut(JAN, "sms")


# --- the default, and its settings -----------------------------------------------------------


def test_without_redis_the_default_is_a_file_in_the_working_directory(test_env):
    settings = Settings.from_environ({k: v for k, v in test_env.items() if k != "STATE_PATH"})

    assert settings.state_path == "sms-state.db"
    assert settings.redis_url is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{tmp}/no-such-folder/state.db", "STATE_PATH: the folder of"),
        ("{tmp}", "STATE_PATH must name a file, not a folder"),
    ],
)
def test_a_state_path_that_cannot_be_a_file_stops_the_start(test_env, tmp_path, value, problem):
    """A typo is a configuration error at start-up; a disk that fails later fails closed."""
    with pytest.raises(ConfigError, match=problem):
        Settings.from_environ({**test_env, "STATE_PATH": value.format(tmp=tmp_path)})


def test_build_store_chooses_redis_then_the_file_then_memory(base_settings, tmp_path, capsys):
    import dataclasses

    state_path = str(tmp_path / "state.db")
    on_file = build_store(dataclasses.replace(base_settings, state_path=state_path))
    on_redis = build_store(
        dataclasses.replace(
            base_settings, state_path=str(tmp_path / "unused.db"), redis_url="redis://x:1/0"
        )
    )
    in_memory = build_store(dataclasses.replace(base_settings, state_path=":memory:"))

    assert isinstance(on_file, SQLiteStore) and on_file.path == state_path
    assert isinstance(on_redis, RedisStore) and not (tmp_path / "unused.db").exists()
    assert isinstance(in_memory, MemoryStore)
    warnings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(w["level"], w["event"]) for w in warnings] == [
        (
            "WARNING",
            "STATE_PATH=:memory: keeps state in process memory: a restart forgets opt-outs, "
            "idempotency keys and message records",
        )
    ]
    on_file.close()
    on_redis.redis.close()


def test_health_names_the_store_and_says_it_takes_writes(make_app, settings, path):
    app = make_app(settings, state_path=path)

    response = app.test_client().get("/health")

    assert response.json == {"status": "ok", "storage": "ok", "store": "sqlite", "writable": True}
    app.extensions["store"].close()


def test_the_image_keeps_its_state_in_a_volume_its_user_may_write():
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]

    assert "STATE_PATH=/var/lib/sms-service/sms-state.db" in dockerfile
    assert "&& chown 10001:10001 /var/lib/sms-service" in lines
    assert "USER 10001" in lines
    volume = lines.index('VOLUME ["/var/lib/sms-service"]')
    assert volume > lines.index("&& chown 10001:10001 /var/lib/sms-service")  # kept, not reset


def test_the_demo_keeps_its_state_in_the_demo_folder(monkeypatch, tmp_path):
    """`make demo` keeps opt-outs and idempotency keys in .demo/ from one run to the next."""
    from tools import demo
    from tools.stack import Credentials

    asked = {}

    def wired_stack(*args, **settings):
        asked.update(settings)
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(demo, "port_in_use", lambda host, port: False)
    monkeypatch.setattr(demo, "wired_stack", wired_stack)
    monkeypatch.setattr(
        demo, "ensure_credentials", lambda folder: Credentials(folder, "a", "k", "x")
    )

    assert demo.main() == 1
    assert asked["STATE_PATH"] == str(ROOT / ".demo" / "state.db")


# --- failing closed --------------------------------------------------------------------------


@pytest.fixture
def shared_dir():
    """A folder another user may enter (pytest's own are the owner's only), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="sqlite-store-"))
    folder.chmod(0o777)
    yield folder
    for path in (folder, *folder.iterdir()):
        path.chmod(0o777)
    shutil.rmtree(folder)


@contextlib.contextmanager
def unprivileged():
    """Run as nobody while the tests run as root, for whom permissions are no obstacle."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def owned_file(folder: Path, mode: int) -> str:
    """A state file with its schema, owned by nobody when running as root, with `mode`."""
    path = folder / "state.db"
    SQLiteStore(str(path), 3600, 1000).close()
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)
    return str(path)


@pytest.fixture
def sqlite_app(make_app, settings):
    """Build the app on a state file, taking signed webhooks; close its store after."""
    built = []

    def build(state_path: str, **changes):
        changes = {"signature_secrets": (SIGNATURE_SECRET,), **changes}
        built.append(make_app(settings, state_path=state_path, **changes))
        return built[-1].test_client()

    yield build
    for app in built:
        app.extensions["store"].close()


def unusable_lines(out: str) -> list[dict]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"].startswith("state file unusable")]


def assert_fails_closed(client, vonage) -> None:
    """503 storage-unavailable on a send, 503 on a webhook, /health 200 saying so; nothing sent."""
    send = client.post("/send-sms", json=VALID_BODY, headers=AUTH)
    assert (send.status_code, send.headers.get("Retry-After")) == (503, "5")
    assert send.json["type"].endswith("/storage-unavailable")
    stop = signed_post(client, "/webhooks/inbound", inbound_body("14155550100", "STOP"))
    assert stop.status_code == 503
    health = client.get("/health")
    assert (health.status_code, health.json) == (
        200,
        {"status": "ok", "storage": "unavailable", "store": "sqlite", "writable": False},
    )
    assert len(vonage.calls) == 0


@pytest.mark.parametrize(
    ("file_mode", "folder_mode", "error"),
    [(0o444, 0o777, "SQLITE_READONLY"), (0o666, 0o555, "SQLITE_READONLY_DIRECTORY")],
    ids=["read-only file", "read-only folder"],
)
def test_a_read_only_file_or_folder_fails_closed_with_one_log_line(
    sqlite_app, vonage, shared_dir, capsys, file_mode, folder_mode, error
):
    path = owned_file(shared_dir, file_mode)
    shared_dir.chmod(folder_mode)
    with unprivileged():
        client = sqlite_app(path)
        assert_fails_closed(client, vonage)
        assert_fails_closed(client, vonage)

    logged = unusable_lines(capsys.readouterr().out)
    assert [(line["level"], line["error"]) for line in logged] == [("ERROR", error)]
    assert logged[0]["state_path"] == path and logged[0]["reason"]


def test_a_file_made_writable_again_serves_again_by_itself(sqlite_app, accept, shared_dir, capsys):
    path = owned_file(shared_dir, 0o444)
    with unprivileged():
        client = sqlite_app(path)
        assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 503
        for made in shared_dir.glob("state.db*"):  # SQLite gave -wal and -shm the file's mode
            made.chmod(0o644)

        assert client.get("/health").json["writable"] is True
        assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 200

    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert [e for e in events if e.startswith("state file")] == [
        "state file unusable: sends and webhooks are refused (503) until it is fixed",
        "state file usable again",
    ]


def garbage_file(path: str) -> None:
    Path(path).write_bytes(b"whatever this was, it is not SQLite any more\n" * 100)


def corrupt_opt_outs(path: str) -> None:
    """A sound file but for the page that holds the opt-out list."""
    store = SQLiteStore(path, 3600, 1000)
    store.opt_out("+14155550171", JAN, "sms")
    store.close()
    page = read(path, "SELECT rootpage FROM sqlite_master WHERE name = 'opt_outs'")
    size = read(path, "PRAGMA page_size")
    with open(path, "r+b") as file:
        file.seek((page - 1) * size)
        file.write(b"\xa5" * size)


@pytest.mark.parametrize(
    ("corrupt", "error"),
    [(garbage_file, "SQLITE_NOTADB"), (corrupt_opt_outs, "SQLITE_CORRUPT")],
    ids=["not a database", "a corrupt page"],
)
def test_a_corrupt_file_fails_closed_with_one_log_line(
    sqlite_app, vonage, path, capsys, corrupt, error
):
    corrupt(path)

    client = sqlite_app(path)  # starts: the service answers, and refuses
    assert_fails_closed(client, vonage)
    assert client.get(f"/opt-outs/{NUMBER}", headers=AUTH).status_code == 503

    logged = unusable_lines(capsys.readouterr().out)
    assert [(line["level"], line["error"].startswith(error)) for line in logged] == [
        ("ERROR", True)
    ]


@pytest.fixture
def many_uuids(vonage):
    """Vonage accepts every SMS, each with an id of its own."""
    vonage.add_callback(
        responses.POST,
        VONAGE_SMS_URL,
        callback=lambda request: (202, {}, json.dumps({"message_uuid": str(uuid.uuid4())})),
    )
    return vonage


def test_a_full_disk_refuses_every_send_until_the_file_may_grow(
    sqlite_app, many_uuids, path, monkeypatch, capsys
):
    """The file may not grow past its size when new (max_page_count stands in for a full
    disk). Sends go on until a write finds no room: from then on every send is refused,
    nothing more is sent, and the store serves again once the file may grow."""
    SQLiteStore(path, 3600, 1000).close()
    pages = read(path, "PRAGMA page_count")
    monkeypatch.setattr(
        store_factory, "SQLiteStore", functools.partial(SQLiteStore, max_pages=pages)
    )
    client = sqlite_app(path, recipient_rate_limit="1000 per minute")

    def send(n: int):
        return client.post("/send-sms", json={**VALID_BODY, "to": f"+1415555{n:04d}"}, headers=AUTH)

    statuses = [send(n).status_code for n in range(40)]

    assert 200 in statuses and 503 in statuses, statuses
    first_refusal = statuses.index(503)
    assert set(statuses[first_refusal:]) == {503}
    assert len(many_uuids.calls) == first_refusal  # every 200 sent once, no 503 sent at all
    assert send(99).json["type"].endswith("/storage-unavailable")
    assert (
        signed_post(client, "/webhooks/inbound", inbound_body("14155550100", "STOP")).status_code
        == 503
    )
    assert client.get("/health").json == {
        "status": "ok",
        "storage": "unavailable",
        "store": "sqlite",
        "writable": False,
    }
    logged = unusable_lines(capsys.readouterr().out)
    assert [line["error"] for line in logged] == ["SQLITE_FULL"]

    store = client.application.extensions["store"]
    store.close()
    store.max_pages = pages + 1000  # room again: the operator freed some disk
    assert client.get("/health").json["writable"] is True
    assert send(100).status_code == 200


def test_a_stack_starts_on_a_state_file_of_its_own(monkeypatch, tmp_path):
    """The tests, the benchmark and the demo start services from nothing, never on a file the
    calling shell names, unless they name one (the demo's .demo/state.db, :memory:)."""
    from tools import stack

    environments = []
    monkeypatch.setenv("STATE_PATH", str(tmp_path / "the-shells.db"))
    monkeypatch.setattr(stack.subprocess, "Popen", lambda command, **kw: environments.append(kw))
    monkeypatch.setattr(stack, "_wait_until_ready", lambda process, ready: None)

    for env in ({}, {}, {"STATE_PATH": ":memory:"}):
        stack.start_service(tmp_path, env, port=1234)

    first, second, named = (kw["env"]["STATE_PATH"] for kw in environments)
    assert first != second
    assert Path(first).parent == Path(second).parent == tmp_path
    assert "the-shells.db" not in first + second
    assert named == ":memory:"
