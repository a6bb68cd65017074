"""Two processes on one store: 20 concurrent begins of one Idempotency-Key start exactly one.
For the stores processes share: SQLite (one file, which both also create at once) and Redis."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from tests.test_store_contract import FINGERPRINT

pytestmark = pytest.mark.slow  # it starts processes

PROCESSES, THREADS = 2, 10


def begin_at_once(kind: str, where: str, barrier, results) -> None:
    """In a child process: open the store, then begin one key from THREADS threads at once."""
    if kind == "sqlite":
        from app.store.sqlite import SQLiteStore

        store = SQLiteStore(where, 3600, 1000)
    else:
        from app.store.redis_store import RedisStore, connect

        store = RedisStore(connect(where), 3600, 1000)
    outcomes: list[str] = []

    def begin() -> None:
        barrier.wait(timeout=60)
        outcomes.append(store.begin_request("alpha:k", FINGERPRINT, lock_s=30).outcome)

    threads = [threading.Thread(target=begin) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(outcomes)


@pytest.fixture(params=["sqlite", "redis"])
def shared(request, tmp_path) -> tuple[str, str]:
    """What each process opens: a new SQLite file, or an emptied Redis database."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "state.db")
    return "redis", request.getfixturevalue("redis_url")


def test_concurrent_begins_in_two_processes_start_exactly_one(shared):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES * THREADS)
    results = context.Queue()
    children = [
        context.Process(target=begin_at_once, args=(*shared, barrier, results))
        for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()

    outcomes = [outcome for _ in children for outcome in results.get(timeout=90)]

    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert sorted(outcomes) == ["conflict"] * (PROCESSES * THREADS - 1) + ["started"]
