"""The store in Redis: shared by every worker and instance, surviving restarts.

Keys (prefix `sms:`): `msg:<uuid>` a record as JSON with the retention as its TTL,
`msgs` a sorted set of uuids by time to bound their number, `optouts` a hash
number -> since, `idem:<key>` an idempotency entry as JSON, `known:<name>:<address>` a
credential that succeeded from an address lately (its TTL says how long it passes the brake).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable

import redis

from .records import Record, apply_status, merge_sent
from .store import Claim, StorageUnavailable, claim_from

PREFIX = "sms:"
TIMEOUT_S = 1.0  # fail fast: a request waits on Redis at most this long per command

# Replace or delete an entry only while it still carries our token (compare-and-set);
# finishing merges the answer into the entry in Redis, so it costs one round trip.
_FINISH = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local entry = cjson.decode(current)
if entry['token'] ~= ARGV[1] then return 0 end
entry['state'], entry['response'] = 'done', cjson.decode(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(entry), 'EX', ARGV[3])
return 1
"""
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def connect(url: str) -> redis.Redis:
    """A client with short timeouts; it reconnects by itself when Redis comes back."""
    return redis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
        health_check_interval=30,
    )


def in_flight_entry(token: str, fingerprint: str) -> str:
    """The entry of an Idempotency-Key whose request is running (redis_admission takes it too)."""
    return json.dumps({"state": "in_flight", "token": token, "fingerprint": fingerprint})


def known_key(client_ip: str, name: str) -> str:
    """The Redis key that says `name` succeeded from `client_ip` (redis_admission sets it too);
    a name holds no ':', so the address may."""
    return PREFIX + "known:" + name + ":" + client_ip


def unavailable_on_error(method):
    """Turn any Redis failure into StorageUnavailable (503): fail closed."""

    @functools.wraps(method)
    def wrapped(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except redis.RedisError as exc:
            raise StorageUnavailable() from exc

    return wrapped


class RedisStore:
    """Store, shared through Redis. Every public method fails closed with StorageUnavailable."""

    def __init__(
        self,
        client: redis.Redis,
        retention_s: int,
        max_messages: int,
        clock: Callable[[], float] = time.time,
    ):
        self.redis, self.retention_s, self.max_messages = client, retention_s, max_messages
        self.clock = clock
        self._finish = client.register_script(_FINISH)
        self._release = client.register_script(_RELEASE)

    @unavailable_on_error
    def save_sent(self, record: Record) -> None:
        """One round trip in the usual case; a webhook that came first is merged instead."""
        message_uuid = str(record["message_uuid"])
        with self.redis.pipeline() as pipe:  # MULTI/EXEC
            pipe.set(
                PREFIX + "msg:" + message_uuid, json.dumps(record), ex=self.retention_s, nx=True
            )
            self._index(pipe, message_uuid)
            created, *_, count = pipe.execute()
        if not created:
            self._update(message_uuid, lambda existing: merge_sent(existing, record))
        self._drop_oldest(count)

    @unavailable_on_error
    def apply_status(self, event: dict[str, object]) -> Record:
        uuid_ = str(event["message_uuid"])
        return self._update(uuid_, lambda existing: apply_status(existing, event))

    @unavailable_on_error
    def get_message(self, message_uuid: str) -> Record | None:
        raw = self.redis.get(PREFIX + "msg:" + message_uuid)
        return json.loads(raw) if raw else None

    @unavailable_on_error
    def opt_out(self, number: str, since: str) -> str:
        self.redis.hsetnx(PREFIX + "optouts", number, since)  # the first date stays
        return self.redis.hget(PREFIX + "optouts", number).decode()

    @unavailable_on_error
    def opt_in(self, number: str) -> bool:
        return bool(self.redis.hdel(PREFIX + "optouts", number))

    @unavailable_on_error
    def opted_out_since(self, number: str) -> str | None:
        since = self.redis.hget(PREFIX + "optouts", number)
        return since.decode() if since else None

    @unavailable_on_error
    def note_key_at(self, client_ip: str, name: str, ttl_s: int) -> None:
        self.redis.set(known_key(client_ip, name), 1, ex=ttl_s)

    @unavailable_on_error
    def key_known_at(self, client_ip: str, name: str) -> bool:
        return bool(self.redis.exists(known_key(client_ip, name)))

    @unavailable_on_error
    def begin_request(self, key: str, fingerprint: str, lock_s: int) -> Claim:
        token = uuid.uuid4().hex
        entry = in_flight_entry(token, fingerprint)
        # SET NX with an expiry: atomic, and a crash cannot hold the key past lock_s.
        if self.redis.set(PREFIX + "idem:" + key, entry, nx=True, ex=lock_s):
            return Claim("started", token=token)
        current = self.redis.get(PREFIX + "idem:" + key)
        return claim_from(json.loads(current) if current else None, fingerprint)

    @unavailable_on_error
    def finish_request(self, key: str, token: str, response: dict, ttl_s: int) -> None:
        self._finish(keys=[PREFIX + "idem:" + key], args=[token, json.dumps(response), ttl_s])

    @unavailable_on_error
    def release_request(self, key: str, token: str) -> None:
        self._release(keys=[PREFIX + "idem:" + key], args=[token])

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def _update(self, message_uuid: str, change: Callable[[Record | None], Record]) -> Record:
        """Read, change and write one record atomically (optimistic: WATCH, retry on a race)."""
        key = PREFIX + "msg:" + message_uuid
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    record = change(json.loads(raw) if raw else None)
                    pipe.multi()
                    if raw:
                        pipe.set(key, json.dumps(record), keepttl=True)
                    else:
                        pipe.set(key, json.dumps(record), ex=self.retention_s)
                        self._index(pipe, message_uuid)
                    results = pipe.execute()
                    break
                except redis.WatchError:
                    continue
        if not raw:
            self._drop_oldest(results[-1])
        return record

    def _index(self, pipe: redis.client.Pipeline, message_uuid: str) -> None:
        """Queue: index the record by time, forget entries past the retention, count the rest."""
        index = PREFIX + "msgs"
        pipe.zadd(index, {message_uuid: self.clock()}, nx=True)
        pipe.zremrangebyscore(index, "-inf", self.clock() - self.retention_s)
        pipe.zcard(index)

    def _drop_oldest(self, count: int) -> None:
        """Forget the oldest records past MAX_MESSAGES."""
        excess = count - self.max_messages
        if excess > 0:
            oldest = [member.decode() for member, _ in self.redis.zpopmin(PREFIX + "msgs", excess)]
            self.redis.delete(*(PREFIX + "msg:" + uuid_ for uuid_ in oldest))
