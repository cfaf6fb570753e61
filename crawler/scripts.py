"""The frontier's Lua scripts. Each runs atomically in Redis; see crawler/frontier.py for keys.

All times come from Redis' own clock (``TIME``), so workers on machines with skewed clocks
still agree on deadlines and politeness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# The seen-set: bucket STRINGs of packed 6-byte fingerprint remainders. A plain find (no
# pattern) with an alignment check tells membership; a miss appends. No byte comparisons:
# Lua compares strings with strcoll, which depends on the server's locale.
_SEEN_ADD = """
local function seen_add(key, rem)
  local s = redis.call('GET', key)
  if not s then
    redis.call('SET', key, rem)
    return 1
  end
  local init = 1
  while true do
    local p = string.find(s, rem, init, true)
    if not p then break end
    if (p - 1) % 6 == 0 then return 0 end
    init = p + 1
  end
  redis.call('SET', key, s .. rem)
  return 1
end
"""

# A host's queue stores an entry without its host (the key names it), and a URL that starts
# with http(s):// and the host without that prefix: "depth\tredirects" + ' ' and the URL, or
# 's' (https) / 'h' (http) and the rest (Entry.stored). POP and DRAIN lease the whole entry
# (Entry.encode): the leases, loss counts and acks key on it. An entry queued before this form
# (with its host, a tab after the redirects) is leased as it is.
_ENTRY_FORMS = """
local function expand(s, host)
  local d, r, sep, rest = string.match(s, '^(%d+)\t(%d+)([ hs])(.*)$')
  if not d then return s end
  if sep == 's' then
    rest = 'https://' .. host .. rest
  elseif sep == 'h' then
    rest = 'http://' .. host .. rest
  end
  return d .. '\t' .. r .. '\t' .. host .. '\t' .. rest
end
local function compact(entry, host)
  local d, r, url = string.match(entry, '^(%d+)\t(%d+)\t[^\t]*\t(.*)$')
  if not d then return entry end
  for _, form in ipairs({{'s', 'https://'}, {'h', 'http://'}}) do
    local p = form[2] .. host
    if string.sub(url, 1, #p) == p then
      return d .. '\t' .. r .. form[1] .. string.sub(url, #p + 1)
    end
  end
  return d .. '\t' .. r .. ' ' .. url
end
"""

# KEYS: stats, hostpages, ready, active, next, qbudget. ARGV: prefix, max_pages, max_per_host,
# host_concurrency, max_queries_per_path, then quintuples (bucket, remainder, host, stored entry,
# path key: a short hash of the URL without its query, '' for a URL without a query).
# A new URL past a budget stays in the seen-set: it is skipped, and counted, once.
ENQUEUE = (
    _NOW
    + _SEEN_ADD
    + """
local prefix = ARGV[1]
local max_pages = tonumber(ARGV[2])
local max_host = tonumber(ARGV[3])
local conc = tonumber(ARGV[4])
local max_query = tonumber(ARGV[5])
local added = 0
for i = 6, #ARGV, 5 do
  if seen_add(prefix .. 'seen:' .. ARGV[i], ARGV[i + 1]) == 1 then
    local host = ARGV[i + 2]
    local path = ARGV[i + 4]
    local skip = nil
    if max_query > 0 and path ~= '' and redis.call('HINCRBY', KEYS[6], path, 1) > max_query then
      skip = 'skipped_query_budget'
    elseif max_host > 0 and redis.call('HINCRBY', KEYS[2], host, 1) > max_host then
      skip = 'skipped_host_budget'
    elseif max_pages >= 0 and redis.call('HINCRBY', KEYS[1], 'enqueued', 1) > max_pages
           and max_pages > 0 then
      redis.call('HINCRBY', KEYS[1], 'enqueued', -1)
      skip = 'capped'
    end
    if not skip then
      redis.call('RPUSH', prefix .. 'q:' .. host, ARGV[i + 3])
      redis.call('HINCRBY', KEYS[1], 'queued', 1)
      added = added + 1
      if tonumber(redis.call('HGET', KEYS[4], host) or '0') < conc then
        local nxt = tonumber(redis.call('HGET', KEYS[5], host) or '0')
        if nxt < now then nxt = now end
        redis.call('ZADD', KEYS[3], 'NX', nxt, host)
      end
    else
      redis.call('HINCRBY', KEYS[1], skip, 1)
    end
  end
end
return added
"""
)

# Membership only. KEYS: none. ARGV: prefix, then pairs (bucket, remainder). Returns 0/1 each.
SEEN_CHECK = """
local out = {}
for i = 2, #ARGV, 2 do
  local s = redis.call('GET', ARGV[1] .. 'seen:' .. ARGV[i])
  local hit = 0
  if s then
    local init = 1
    while true do
      local p = string.find(s, ARGV[i + 1], init, true)
      if not p then break end
      if (p - 1) % 6 == 0 then hit = 1 break end
      init = p + 1
    end
  end
  out[#out + 1] = hit
end
return out
"""

# Lease up to `count` entries of ready hosts to a worker, and record its heartbeat.
# KEYS: ready, active, next, owner, holding, stats, workers, lost, trial, hungry, starving,
# share, asked.
# ARGV: prefix, count, worker, ttl_ms, host_concurrency, delay_ms, max_losses, window_ms.
# Returns entries (a quarantined one as "!<losses>\t<entry>"), or {wait_ms} when a host
# becomes ready later or a slot may free up soon.
#
# Poison: an entry in `lost` (its lease was lost with a dead worker) is a suspect. A worker
# tries one suspect at a time (its `trial`; others are left in place for later), so that when
# it dies again the blame falls on that one entry; REQUEUE counts the trial's loss.
# An entry lost `max_losses` times is leased only to be recorded as poison, never fetched.
#
# Fair sharing: workers are ranked by (`share`: entries popped, decaying by e every 30 s; the
# time since which they have found nothing ready, `starving`, never if they are not; their id).
# A worker that found nothing ready lately (`hungry`, within the window: it is asking) is owed
# the next free slot by every worker ranked after it: without that, the worker that releases a
# host slot takes it again at once, and hosts stick to whoever got them first. The first of the
# ranking never yields, so someone always pops. "Lately" is the window, or twice the time since
# the worker's previous ask (`asked`: "ms time|owed ms") if longer, remembered over its next
# asks (x 0.9 each), up to 10 windows: a worker starved of CPU asks later than it is told to
# (a burst of asks, then none for a while), and was forgotten between two bursts (17% of the
# pages at load 13).
POP = (
    _NOW
    + _ENTRY_FORMS
    + """
local prefix = ARGV[1]
local count = tonumber(ARGV[2])
local worker = ARGV[3]
local conc = tonumber(ARGV[5])
local delay = tonumber(ARGV[6])
local max_lost = tonumber(ARGV[7])
local window = tonumber(ARGV[8])
local poll = math.max(math.floor(window / 3), 1)
local owed = window
redis.call('ZADD', KEYS[7], now + tonumber(ARGV[4]), worker)
if window > 0 then
  local asked = redis.call('HGET', KEYS[13], worker)
  if asked then
    local sep = string.find(asked, '|', 1, true)
    local last = tonumber(string.sub(asked, 1, sep - 1))
    local before = tonumber(string.sub(asked, sep + 1))
    owed = math.min(math.max(window, 2 * (now - last), math.floor(before * 0.9)), 10 * window)
  end
  redis.call('HSET', KEYS[13], worker, now .. '|' .. owed)
end
local function share(w)
  local raw = redis.call('HGET', KEYS[12], w)
  if not raw then return 0 end
  local sep = string.find(raw, '|', 1, true)
  local v, t = tonumber(string.sub(raw, 1, sep - 1)), tonumber(string.sub(raw, sep + 1))
  return v * math.exp((t - now) / 30000)
end
local function starve()
  if redis.call('ZCARD', KEYS[7]) > 1 then
    redis.call('ZADD', KEYS[10], now + owed, worker)
    redis.call('HSETNX', KEYS[11], worker, now)
  end
end
if window > 0 then
  for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', now)) do
    redis.call('ZREM', KEYS[10], w)
    redis.call('HDEL', KEYS[11], w)
  end
  local mine = share(worker)
  local since = tonumber(redis.call('HGET', KEYS[11], worker) or '9e18')
  -- The 32 latest askers at most: a bounded cost per pop however many workers wait.
  for _, other in ipairs(redis.call('ZREVRANGE', KEYS[10], 0, 31)) do
    if other ~= worker then
      local h = share(other)
      local s = tonumber(redis.call('HGET', KEYS[11], other) or '9e18')
      if h < mine or (h == mine and (s < since or (s == since and other < worker))) then
        starve()
        return {tostring(poll)}
      end
    end
  end
end
local function on_trial()
  local t = redis.call('HGET', KEYS[9], worker)
  return t and redis.call('HEXISTS', KEYS[5], t) == 1 and redis.call('HGET', KEYS[4], t) == worker
end
local out = {}
local skipped = 0
local wait = 0
while #out < count do
  local first = redis.call('ZRANGE', KEYS[1], skipped, skipped, 'WITHSCORES')
  if #first == 0 then break end
  local host = first[1]
  if tonumber(first[2]) > now then
    wait = tonumber(first[2]) - now
    break
  end
  local qkey = prefix .. 'q:' .. host
  local raw = redis.call('LPOP', qkey)
  if not raw then
    redis.call('ZREM', KEYS[1], host)
  else
    local entry = expand(raw, host)
    local lost = tonumber(redis.call('HGET', KEYS[8], entry) or '0')
    if max_lost > 0 and lost >= max_lost then
      -- Quarantined: leased to be written as a poison row; takes no host slot, no delay.
      redis.call('HSET', KEYS[4], entry, worker)
      redis.call('SADD', prefix .. 'lease:' .. worker, entry)
      redis.call('HINCRBY', KEYS[6], 'queued', -1)
      if redis.call('LLEN', qkey) == 0 then redis.call('ZREM', KEYS[1], host) end
      out[#out + 1] = '!' .. lost .. '\\t' .. entry
    elseif lost > 0 and on_trial() then
      redis.call('LPUSH', qkey, raw)
      skipped = skipped + 1
    else
      if lost > 0 then redis.call('HSET', KEYS[9], worker, entry) end
      local active = redis.call('HINCRBY', KEYS[2], host, 1)
      redis.call('HSET', KEYS[3], host, now + delay)
      redis.call('HSET', KEYS[4], entry, worker)
      redis.call('SADD', prefix .. 'lease:' .. worker, entry)
      redis.call('HSET', KEYS[5], entry, 1)
      redis.call('HINCRBY', KEYS[6], 'queued', -1)
      if active >= conc or redis.call('LLEN', qkey) == 0 then
        redis.call('ZREM', KEYS[1], host)
      else
        redis.call('ZADD', KEYS[1], now + delay, host)
      end
      out[#out + 1] = entry
    end
  end
end
if #out > 0 then
  if window > 0 then
    redis.call('ZREM', KEYS[10], worker)
    redis.call('HDEL', KEYS[11], worker)
    redis.call('HSET', KEYS[12], worker, (share(worker) + #out) .. '|' .. now)
  end
  return out
end
if window > 0 and redis.call('ZCARD', KEYS[7]) > 1 then
  starve()
  -- Another worker may free a slot at any moment (work is queued behind busy hosts).
  if skipped > 0 or tonumber(redis.call('HGET', KEYS[6], 'queued') or '0') > 0 then
    if wait == 0 or wait > poll then wait = poll end
  end
elseif skipped > 0 and wait == 0 then
  wait = 50
end
if wait > 0 then return {tostring(wait)} end
return out
"""
)

# Give host slots back. KEYS: holding, active, ready, next. ARGV: prefix, then (entry, host)*.
RELEASE = """
local prefix = ARGV[1]
for i = 2, #ARGV, 2 do
  local entry, host = ARGV[i], ARGV[i + 1]
  if redis.call('HDEL', KEYS[1], entry) == 1 then
    local active = redis.call('HINCRBY', KEYS[2], host, -1)
    if active <= 0 then redis.call('HDEL', KEYS[2], host) end
    if redis.call('LLEN', prefix .. 'q:' .. host) > 0 then
      local nxt = tonumber(redis.call('HGET', KEYS[4], host) or '0')
      redis.call('ZADD', KEYS[3], 'NX', nxt, host)
    end
  end
end
return 1
"""

# Drop leases whose rows are written. Only the owner's: a lease taken over after its worker
# was presumed dead belongs to the new owner. An acked entry's loss count goes too.
# KEYS: owner, lost. ARGV: prefix, worker, entries...
ACK = """
local lease = ARGV[1] .. 'lease:' .. ARGV[2]
local n = 0
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[2] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    n = n + 1
  end
  redis.call('SREM', lease, ARGV[i])
end
return n
"""

# Shared by RETURN and REQUEUE: a lease of `worker` goes back to the front of its host queue.
# KEYS[1..5]: owner, holding, active, ready, stats. `counter` names the stats field to bump.
_GIVE_BACK = """
local function give_back(prefix, worker, entry, counter)
  if redis.call('HGET', KEYS[1], entry) ~= worker then return 0 end
  local host = string.match(entry, '^[^\\t]*\\t[^\\t]*\\t([^\\t]*)\\t')
  redis.call('HDEL', KEYS[1], entry)
  redis.call('SREM', prefix .. 'lease:' .. worker, entry)
  if redis.call('HDEL', KEYS[2], entry) == 1 then
    local active = redis.call('HINCRBY', KEYS[3], host, -1)
    if active <= 0 then redis.call('HDEL', KEYS[3], host) end
  end
  redis.call('LPUSH', prefix .. 'q:' .. host, compact(entry, host))
  redis.call('HINCRBY', KEYS[5], 'queued', 1)
  redis.call('HINCRBY', KEYS[5], counter, 1)
  redis.call('ZADD', KEYS[4], 'NX', now, host)
  return 1
end
"""

# Put a worker's own leased entries back (pages to fetch again).
# KEYS: owner, holding, active, ready, stats. ARGV: prefix, worker, entries...
RETURN = (
    _NOW
    + _ENTRY_FORMS
    + _GIVE_BACK
    + """
local n = 0
for i = 3, #ARGV do
  n = n + give_back(ARGV[1], ARGV[2], ARGV[i], 'returned')
end
return n
"""
)

# Workers whose heartbeat ran out (or the one named): all their leases go back.
# KEYS: owner, holding, active, ready, stats, workers, lost, trial, share, asked, hungry,
# starving. ARGV: prefix, worker ('' for every dead one), count ('1': the worker died or
# hung; '0': it left cleanly).
# A lost entry that still held its host slot (popped, not yet processed) becomes a suspect
# (loss count 1); the worker's trial suspect, if it still held its slot, gets one more loss.
# Returns the number of entries requeued.
REQUEUE = (
    _NOW
    + _ENTRY_FORMS
    + _GIVE_BACK
    + """
local prefix = ARGV[1]
local count = ARGV[3] == '1'
local dead
if ARGV[2] ~= '' then
  dead = {ARGV[2]}
else
  dead = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now)
end
local n = 0
for _, worker in ipairs(dead) do
  local lease = prefix .. 'lease:' .. worker
  local trial = redis.call('HGET', KEYS[8], worker)
  for _, entry in ipairs(redis.call('SMEMBERS', lease)) do
    if count and redis.call('HGET', KEYS[1], entry) == worker
        and redis.call('HEXISTS', KEYS[2], entry) == 1 then
      if entry == trial then
        redis.call('HINCRBY', KEYS[7], entry, 1)
      else
        redis.call('HSETNX', KEYS[7], entry, 1)
      end
    end
    n = n + give_back(prefix, worker, entry, 'requeued')
  end
  redis.call('DEL', lease)
  redis.call('ZREM', KEYS[6], worker)
  redis.call('HDEL', KEYS[8], worker)
  redis.call('HDEL', KEYS[9], worker)
  redis.call('HDEL', KEYS[10], worker)
  redis.call('ZREM', KEYS[11], worker)  -- a worker gone is owed no slot
  redis.call('HDEL', KEYS[12], worker)
end
return n
"""
)

# Past the crawl's time limit: lease up to `count` queued entries of any host, ready or not,
# without taking host slots (they are recorded as deferred, not fetched): hosts in `ready`,
# then hosts whose slots are all in use (few: as many as requests in flight).
# KEYS: ready, owner, stats, workers, active. ARGV: prefix, count, worker, ttl_ms.
DRAIN = (
    _NOW
    + _ENTRY_FORMS
    + """
local prefix = ARGV[1]
local count = tonumber(ARGV[2])
local worker = ARGV[3]
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), worker)
local out = {}
local function take(host)
  local qkey = prefix .. 'q:' .. host
  while #out < count do
    local raw = redis.call('LPOP', qkey)
    if not raw then
      redis.call('ZREM', KEYS[1], host)
      return
    end
    local entry = expand(raw, host)
    redis.call('HSET', KEYS[2], entry, worker)
    redis.call('SADD', prefix .. 'lease:' .. worker, entry)
    redis.call('HINCRBY', KEYS[3], 'queued', -1)
    out[#out + 1] = entry
  end
end
for _, host in ipairs(redis.call('ZRANGE', KEYS[1], 0, count - 1)) do
  take(host)
  if #out >= count then return out end
end
for _, host in ipairs(redis.call('HKEYS', KEYS[5])) do
  take(host)
  if #out >= count then return out end
end
return out
"""
)

# Per-host send lock, cluster-wide: a request to a host may start when no other request to it
# is in flight and the host's next start time has come. KEYS: busy, sendnext, crawldelay.
# ARGV: host, token, lock_ttl_ms. Returns 0 when the caller holds the lock (go), else ms to
# wait before asking again.
ACQUIRE = (
    _NOW
    + """
local host = ARGV[1]
local at = tonumber(redis.call('HGET', KEYS[2], host) or '0')
if at > now then return at - now end
local holder = redis.call('HGET', KEYS[1], host)
if holder then
  local sep = string.find(holder, '|', 1, true)
  local expires = tonumber(string.sub(holder, 1, sep - 1))
  if expires > now then return 20 end
end
redis.call('HSET', KEYS[1], host, (now + tonumber(ARGV[3])) .. '|' .. ARGV[2])
return 0
"""
)

# The request holding a host's send lock got its answer (or failed): the next may start
# `delay` from now. KEYS: busy, sendnext, crawldelay. ARGV: host, token, delay_ms.
SENT = (
    _NOW
    + """
local host = ARGV[1]
local holder = redis.call('HGET', KEYS[1], host)
if holder and string.sub(holder, string.find(holder, '|', 1, true) + 1) == ARGV[2] then
  redis.call('HDEL', KEYS[1], host)
end
local delay = tonumber(ARGV[3])
local robots = tonumber(redis.call('HGET', KEYS[3], host) or '0')
if robots > delay then delay = robots end
redis.call('HSET', KEYS[2], host, now + delay)
return 1
"""
)


class Script:
    """A Lua script called by EVALSHA, loaded once (and again after a Redis restart).

    redis-py's own Script sends SCRIPT EXISTS before every pipeline that uses it: one more
    round trip per page.
    """

    def __init__(self, client: redis.Redis, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def load(self) -> None:
        self.client.script_load(self.source)

    def __call__(self, keys: Sequence[str], args: Sequence[object], client: Any = None) -> Any:
        if client is not None:  # a pipeline: the caller runs it through Frontier.execute
            return client.evalsha(self.sha, len(keys), *keys, *args)
        try:
            return self.client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.load()
            return self.client.evalsha(self.sha, len(keys), *keys, *args)
