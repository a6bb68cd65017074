"""The store in Redis: shared by every worker and instance, surviving restarts.

Keys (prefix `sms:`): `msg:<uuid>` a record as JSON with the retention as its TTL,
`msgs` a sorted set of uuids by time to bound their number, `optouts` a hash
number -> since (read by the admission script too), `optout-sources` a hash
number -> `sms` or `api` (an entry older than this hash has none: its source is
unknown), `idem:<key>` an idempotency entry as JSON, `jti:<id>` a webhook token's id
while the token could still be replayed, `known:<name>:<address>` a credential that
succeeded from an address lately (its TTL says how long it passes the brake).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable

import redis

from ..domain.claims import Claim, claim_from
from ..domain.optouts import OptIn, OptOut, OptOutSource
from ..domain.records import Record, apply_status, merge_sent
from .contract import StorageUnavailable

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

# The opt-out rules of app/domain/optouts.py (added_opt_out, may_lift), atomic in Redis.
# KEYS: optouts, optout-sources. Reply: {since or nil, source or nil, removed (opt-in only)}.
_OPT_OUT = """
local created = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if created == 1 or ARGV[3] == 'sms' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], ARGV[1])}
"""
_OPT_IN = """
local since = redis.call('HGET', KEYS[1], ARGV[1])
local source = redis.call('HGET', KEYS[2], ARGV[1])
if not since then return {false, false, 0} end
if ARGV[2] == 'sms' or ARGV[3] == '1' or source == 'api' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return {since, source, 1}
end
return {since, source, 0}
"""
_OPT_OUT_KEYS = [PREFIX + "optouts", PREFIX + "optout-sources"]


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

    kind = "redis"

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
        self._opt_out = client.register_script(_OPT_OUT)
        self._opt_in = client.register_script(_OPT_IN)

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
    def opt_out(self, number: str, since: str, source: OptOutSource) -> OptOut:
        stored_since, stored_source = self._opt_out(
            keys=_OPT_OUT_KEYS, args=[number, since, source]
        )
        return _opt_out_entry(stored_since, stored_source)

    @unavailable_on_error
    def opt_in(self, number: str, by: OptOutSource, override: bool = False) -> OptIn:
        since, source, removed = self._opt_in(keys=_OPT_OUT_KEYS, args=[number, by, int(override)])
        return OptIn(_opt_out_entry(since, source) if since else None, removed=bool(removed))

    @unavailable_on_error
    def opt_out_entry(self, number: str) -> OptOut | None:
        with self.redis.pipeline() as pipe:
            since, source = (
                pipe.hget(_OPT_OUT_KEYS[0], number).hget(_OPT_OUT_KEYS[1], number).execute()
            )
        return _opt_out_entry(since, source) if since else None

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
    def use_webhook_token(self, jti: str, ttl_s: int) -> bool:
        return bool(self.redis.set(PREFIX + "jti:" + jti, 1, nx=True, ex=ttl_s))

    @unavailable_on_error
    def forget_webhook_token(self, jti: str) -> None:
        self.redis.delete(PREFIX + "jti:" + jti)

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


def _opt_out_entry(since: bytes, source: bytes | None) -> OptOut:
    """An entry as Redis keeps it; an old one has no source."""
    known = source.decode() if source in (b"sms", b"api") else None
    return OptOut(since.decode(), known)
