"""Admission in one round trip to Redis: StepwiseAdmission's sequence as one Lua script.

A script runs atomically inside Redis, so the gates see one consistent state and the
request waits on the network once. The rate limits stay limits' moving windows: the
script uses limits' keys (its prefix and `key_for`) and the algorithm of its own
scripts (limits/resources/redis/lua_scripts: acquire_moving_window.lua to count,
moving_window.lua to read a window), so that limits' strategy, used by the other
routes' key checks and by the tests, reads and counts the same lists.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import redis
from limits.util import WindowStats

from ..domain.claims import Claim, claim_from
from .admission import (
    API_KEY,
    BUDGET,
    FAILED_AUTH,
    RECIPIENT,
    LimitItems,
    Ticket,
    Verdict,
    Window,
    recipient_key,
)
from .redis_store import PREFIX, in_flight_entry, known_key, unavailable_on_error

# KEYS: the windows (failed-auth, then the key's, then the recipient's, then the key's
#       segment budget), the opt-out hash, the mark of the key at this address when the
#       key is known, then the Idempotency-Key's entry (last) when one is to be taken.
# ARGV: now, how many windows of each kind, the last gate to run, whether the key is
#       known, the recipient, the in-flight entry ('' for none) and its lock, how long
#       the key's mark lasts, the text's segments (the budget's cost), then each window's
#       amount and expiry.
# Reply: {outcome, window, its oldest entry, its entries, detail}: outcome is 'pass' or
#       the refusing gate; window is the 1-based index of the window to show (0: none);
#       detail is the Idempotency-Key's current entry, or the opt-out date.
ADMIT_SEND = """
local now = tonumber(ARGV[1])
local last_auth = tonumber(ARGV[2])
local last_key = last_auth + tonumber(ARGV[3])
local last_recipient = last_key + tonumber(ARGV[4])
local last_budget = last_recipient + tonumber(ARGV[5])
local stop_after, key_known, recipient = ARGV[6], ARGV[7] == '1', ARGV[8]
local in_flight, lock_s, known_s, cost = ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12])

local function amount(i) return tonumber(ARGV[11 + 2 * i]) end
local function expiry(i) return tonumber(ARGV[12 + 2 * i]) end

-- moving_window.lua: the oldest entry still in the window, and how many are.
local function window(i)
  local low, high, found = 0, amount(i) - 1, nil
  while low <= high do
    local mid = math.floor((low + high) / 2)
    local value = tonumber(redis.call('LINDEX', KEYS[i], mid))
    if value and value >= now - expiry(i) then found, low = mid, mid + 1 else high = mid - 1 end
  end
  if found then return redis.call('LINDEX', KEYS[i], found), found + 1 end
  return false, 0
end

-- acquire_moving_window.lua: whether n entries fit, and taking them.
local function fits(i, n)
  if n > amount(i) then return false end
  local entry = redis.call('LINDEX', KEYS[i], amount(i) - n)
  return not (entry and tonumber(entry) >= now - expiry(i))
end
local function acquire(i, n)
  if not fits(i, n) then return false end
  local entries = {}
  for j = 1, n do entries[j] = now end
  redis.call('LPUSH', KEYS[i], unpack(entries))
  redis.call('LTRIM', KEYS[i], 0, amount(i) - 1)
  redis.call('EXPIRE', KEYS[i], expiry(i))
  return true
end

local function refused(gate, i)
  local oldest, count = window(i)
  return {gate, i, oldest, count, false}
end

-- The window to show: the first with the fewest left, of the key's limits and budget.
local function tightest()
  local shown, oldest, count, left = 0, false, 0, nil
  for i = last_auth + 1, last_budget do
    if i <= last_key or i > last_recipient then
      local first, entries = window(i)
      if left == nil or amount(i) - entries < left then
        shown, oldest, count, left = i, first, entries, amount(i) - entries
      end
    end
  end
  return shown, oldest, count
end

-- The brake: an IP past its failed keys is refused whatever key it sends, but a key
-- that succeeded from this IP lately.
local known_mark = KEYS[last_budget + 2]
for i = 1, last_auth do
  local oldest, count = window(i)
  if count >= amount(i) then
    if not (key_known and redis.call('EXISTS', known_mark) == 1) then
      return {'failed-auth', i, oldest, count, false}
    end
    break
  end
end
if not key_known then
  for i = 1, last_auth do acquire(i, 1) end
  return {'api-key', 0, false, 0, false}
end
redis.call('SET', known_mark, '1', 'EX', known_s)
if stop_after == 'api-key' then return {'pass', 0, false, 0, false} end

-- The Idempotency-Key, before the limits: a replay costs nothing.
if in_flight ~= '' then
  local entry_key = KEYS[#KEYS]
  if not redis.call('SET', entry_key, in_flight, 'NX', 'EX', lock_s) then
    return {'idempotency', 0, false, 0, redis.call('GET', entry_key)}
  end
end

-- The budget (a valid body's: its cost is known), tested before any limit is counted and
-- spent last: a refusal spends nothing.
if stop_after == 'recipient-limit' then
  for i = last_recipient + 1, last_budget do
    if not fits(i, cost) then return refused('budget', i) end
  end
end
for i = last_auth + 1, last_key do
  if not acquire(i, 1) then return refused('key-limit', i) end
end
if stop_after == 'key-limit' then
  local shown, oldest, count = tightest()
  return {'pass', shown, oldest, count, false}
end

-- The opt-out list, before the recipient's limit: a refusal uses none of its allowance.
local since = redis.call('HGET', KEYS[last_budget + 1], recipient)
if since then
  local shown, oldest, count = tightest()
  return {'opt-out', shown, oldest, count, since}
end

for i = last_key + 1, last_recipient do
  if not acquire(i, 1) then return refused('recipient-limit', i) end
end
for i = last_recipient + 1, last_budget do acquire(i, cost) end  -- fits: tested above
local shown, oldest, count = tightest()
return {'pass', shown, oldest, count, false}
"""


class RedisAdmission:
    """Admission in one round trip; a Redis failure is StorageUnavailable (fail closed)."""

    def __init__(
        self,
        client: redis.Redis,
        limits: LimitItems,
        prefixed_key: Callable[[str], str],
        clock: Callable[[], float] = time.time,
    ):
        self.limits, self.prefixed_key, self.clock = limits, prefixed_key, clock
        self._admit = client.register_script(ADMIT_SEND)  # EVALSHA; loaded on first use

    @unavailable_on_error
    def admit(self, ticket: Ticket) -> Verdict:
        now = self.clock()
        windows, counts = self._windows(ticket)
        keys = [self.prefixed_key(item.key_for(scope, key)) for item, scope, key in windows]
        keys.append(PREFIX + "optouts")
        if ticket.api_key is not None:
            keys.append(known_key(ticket.client_ip, ticket.api_key))
        token, in_flight, lock_s = None, "", 0
        if ticket.idempotency is not None:
            token = uuid.uuid4().hex
            in_flight = in_flight_entry(token, ticket.idempotency.fingerprint)
            lock_s = ticket.idempotency.lock_s
            keys.append(PREFIX + "idem:" + ticket.idempotency.key)
        args = [now, *counts, ticket.stop_after, int(ticket.api_key is not None)]
        args += [ticket.recipient or "", in_flight, lock_s, self.limits.known_key_s]
        args.append(ticket.segments)
        for item, _, _ in windows:
            args += [item.amount, item.get_expiry()]
        reply = self._admit(keys=keys, args=args)
        return _verdict(reply, [item for item, _, _ in windows], ticket, token, now)

    def _windows(self, ticket: Ticket) -> tuple[list[tuple], list[int]]:
        """The windows the ticket's gates read, (item, scope, key) in the script's order, and
        how many of each kind: failed-auth, the key's, the recipient's, the key's budget."""
        limits = self.limits
        windows = [(item, FAILED_AUTH, ticket.client_ip) for item in limits.failed_auth]
        counts = [len(windows), 0, 0, 0]
        if ticket.api_key is None or ticket.stop_after == "api-key":
            return windows, counts
        windows += [(item, API_KEY, ticket.api_key) for item in limits.per_key]
        counts[1] = len(limits.per_key)
        if ticket.stop_after == "recipient-limit" and ticket.recipient is not None:
            counter = recipient_key(ticket.recipient)
            windows += [(item, RECIPIENT, counter) for item in limits.per_recipient]
            counts[2] = len(limits.per_recipient)
        windows += [(item, BUDGET, ticket.api_key) for item in limits.segment_budget]
        counts[3] = len(limits.segment_budget)
        return windows, counts


def _verdict(reply: list, items: list, ticket: Ticket, token: str | None, now: float) -> Verdict:
    """Read the script's reply as StepwiseAdmission would have answered."""
    outcome, index, oldest, count, detail = reply
    refused_by = None if outcome == b"pass" else outcome.decode()
    window = None
    if index:
        item = items[index - 1]
        start = float(oldest) if oldest is not None else now  # limits: an empty window starts now
        window = Window(item, WindowStats(start + item.get_expiry(), item.amount - count))
    claim = None
    if refused_by == "idempotency":
        current = json.loads(detail) if detail else None
        claim = claim_from(current, ticket.idempotency.fingerprint)
    elif ticket.idempotency is not None and refused_by not in ("failed-auth", "api-key"):
        claim = Claim("started", token=token)
    since = detail.decode() if refused_by == "opt-out" else None
    return Verdict(refused_by, window, claim, since)
