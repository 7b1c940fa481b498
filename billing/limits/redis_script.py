"""The limiter's one Lua script: admit and settle, each one atomic round trip to Redis.

Keys (all under one prefix, ``<GATEWAY_REDIS_PREFIX>:{limits}``; ``{limits}`` is a hash tag, so every
key lands in one Redis Cluster slot, as a script touching several keys requires). For each budget,
then each rate limit of the plan, two keys:

- ``<prefix>:budget:<scope>:<id>:<period end, Unix s | "life">``: a hash with ``spend`` (settled,
  seeded from the ledger's spend with HSETNX), ``held`` (the sum of holds in flight) and ``r:<request id>``
  (each request's hold). Expires a day after its period ends; a lifetime budget's never expires.
- ``...:leases``: a sorted set of request ids scored by when their hold expires (ms). A hold whose
  request was never settled (a crashed instance) is dropped from ``held`` once its lease runs out.
- ``<prefix>:rate:<scope>:<id>``: a hash with the current ``window`` (Unix minute), its ``requests``
  and ``tokens``. A fixed one-minute window: cheap (one hash per scope, reset in place when the minute
  changes) and its reset time is exact for the headers, at the price of bursts at the boundary: up to
  twice the limit can pass in the seconds around a minute's turn. Expires 2 minutes after last use.
- ``<prefix>:parallel:<scope>:<id>``: a sorted set of request ids in flight scored by lease expiry
  (ms); expired ones are pruned before counting, so a crashed instance cannot leak slots for good.

Money is an integer string of 1e-10 USD, only ever changed by HINCRBY (exact signed 64-bit: up to
$922,337,203.68). Lua's numbers are doubles, exact only below 2^53 units ($900,719.93), so the
script never turns an amount into one number: it compares amounts as two limbs of at most 12 digits
each, exact over the whole 64-bit range. Counts and token numbers are plain Lua numbers.

The clock is Redis's own (TIME), shared by every instance, unless the caller passes one (tests).
"""

SCRIPT = r"""
local LIMB = 1000000000000

local function limbs(amount)
  local length = #amount
  if length <= 12 then return {0, tonumber(amount)} end
  return {tonumber(string.sub(amount, 1, length - 12)), tonumber(string.sub(amount, length - 11))}
end

local function sum(a, b)
  local low = a[2] + b[2]
  local carry = math.floor(low / LIMB)
  return {a[1] + b[1] + carry, low - carry * LIMB}
end

local function at_most(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] <= b[2])
end

local function clock(given)
  if given ~= '' then return tonumber(given) end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function drop_hold(budget, request_id)
  local units = redis.call('HGET', budget, 'r:' .. request_id)
  if units then
    redis.call('HDEL', budget, 'r:' .. request_id)
    if units ~= '0' then redis.call('HINCRBY', budget, 'held', '-' .. units) end
  end
end

local function admit()
  local now = clock(ARGV[2])
  local minute = math.floor(now / 60000)
  local request_id, lease_ms, tokens, reserve = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
  local budget_count, rate_count = tonumber(ARGV[7]), tonumber(ARGV[8])
  -- Every request needs at least one unit left: an exhausted budget refuses even an unpriced request.
  local need = limbs(reserve)
  if reserve == '0' then need = {0, 1} end
  local reply = {now, '', 0}
  local expiries, rates = {}, {}
  local arg = 9
  for i = 1, budget_count do
    local budget, leases = KEYS[2 * i - 1], KEYS[2 * i]
    local limit, seed, expire_at = ARGV[arg], ARGV[arg + 1], tonumber(ARGV[arg + 2])
    arg = arg + 3
    expiries[i] = expire_at
    if redis.call('HSETNX', budget, 'spend', seed) == 1 and expire_at > 0 then
      redis.call('EXPIREAT', budget, expire_at)
    end
    for _, expired in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now)) do
      drop_hold(budget, expired)
    end
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    local counters = redis.call('HMGET', budget, 'spend', 'held')
    local spend, held = counters[1] or seed, counters[2] or '0'
    if reply[2] == '' and not at_most(sum(sum(limbs(spend), limbs(held)), need), limbs(limit)) then
      reply[2], reply[3] = 'budget', i
    end
    reply[#reply + 1] = spend
    reply[#reply + 1] = held
  end
  local base = 2 * budget_count
  for i = 1, rate_count do
    local window, parallel = KEYS[base + 2 * i - 1], KEYS[base + 2 * i]
    local rpm, tpm, max_parallel = tonumber(ARGV[arg]), tonumber(ARGV[arg + 1]), tonumber(ARGV[arg + 2])
    arg = arg + 3
    local counters = redis.call('HMGET', window, 'window', 'requests', 'tokens')
    local current = tonumber(counters[1]) == minute
    local requests, used, running = 0, 0, 0
    if current then requests, used = tonumber(counters[2]), tonumber(counters[3]) end
    if max_parallel then
      redis.call('ZREMRANGEBYSCORE', parallel, '-inf', now)
      running = redis.call('ZCARD', parallel)
    end
    if reply[2] == '' then
      if rpm and requests + 1 > rpm then reply[2], reply[3] = 'requests', i
      elseif tpm and used + tokens > tpm then reply[2], reply[3] = 'tokens', i
      elseif max_parallel and running + 1 > max_parallel then reply[2], reply[3] = 'parallel', i end
    end
    rates[i] = {window = window, parallel = parallel, counted = (rpm or tpm) ~= nil,
                capped = max_parallel ~= nil, current = current}
    reply[#reply + 1] = requests
    reply[#reply + 1] = used
    reply[#reply + 1] = running
  end
  if reply[2] ~= '' then return reply end
  local lease_end = now + lease_ms
  if reserve ~= '0' then
    for i = 1, budget_count do
      local budget, leases = KEYS[2 * i - 1], KEYS[2 * i]
      redis.call('HINCRBY', budget, 'held', reserve)
      redis.call('HSET', budget, 'r:' .. request_id, reserve)
      redis.call('ZADD', leases, lease_end, request_id)
      if expiries[i] > 0 then redis.call('EXPIREAT', leases, expiries[i]) end
    end
  end
  for i = 1, rate_count do
    local rate = rates[i]
    if rate.counted then
      if rate.current then
        redis.call('HINCRBY', rate.window, 'requests', 1)
        redis.call('HINCRBY', rate.window, 'tokens', tokens)
      else
        redis.call('HSET', rate.window, 'window', minute, 'requests', 1, 'tokens', tokens)
      end
      redis.call('PEXPIRE', rate.window, 120000)
    end
    if rate.capped then
      redis.call('ZADD', rate.parallel, lease_end, request_id)
      redis.call('PEXPIRE', rate.parallel, lease_ms)
    end
  end
  return reply
end

local function settle()
  local request_id, window, correction, cost = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
  local budget_count, rate_count = tonumber(ARGV[7]), tonumber(ARGV[8])
  local reply = {}
  for i = 1, budget_count do
    local budget, leases = KEYS[2 * i - 1], KEYS[2 * i]
    drop_hold(budget, request_id)
    redis.call('ZREM', leases, request_id)
    -- A counter gone with its period stays gone: the ledger records the cost all the same.
    if cost ~= '0' and redis.call('HEXISTS', budget, 'spend') == 1 then
      redis.call('HINCRBY', budget, 'spend', cost)
    end
    reply[i] = redis.call('HGET', budget, 'spend') or ''
  end
  local base = 2 * budget_count
  for i = 1, rate_count do
    local counters, parallel = KEYS[base + 2 * i - 1], KEYS[base + 2 * i]
    redis.call('ZREM', parallel, request_id)
    -- Correct TPM only in the window that counted the estimate; a past window no longer matters.
    if correction ~= 0 and tonumber(redis.call('HGET', counters, 'window')) == window then
      if redis.call('HINCRBY', counters, 'tokens', correction) < 0 then
        redis.call('HSET', counters, 'tokens', 0)
      end
    end
  end
  return reply
end

if ARGV[1] == 'admit' then return admit() end
if ARGV[1] == 'settle' then return settle() end
return redis.error_reply('unknown limiter step ' .. tostring(ARGV[1]))
"""
