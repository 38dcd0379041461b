//! The Lua scripts, run by `EVALSHA` with a reload on `NOSCRIPT` (`redis::Script` does it:
//! the script cache is lost on restart, failover and `SCRIPT FLUSH`). Every key is passed in
//! `KEYS` (Cluster routing), values in `ARGV`. Time is the server's (`TIME`, allowed in
//! scripts since Redis 5's effects replication, the only mode of Redis 7), never the
//! client's, and never goes backwards: `now = max(TIME, last now stored)`.
//!
//! Each script checks the type of its keys before writing anything: a key of another type
//! gets the error `THROTTLE_WRONGTYPE` and nothing changes.

/// Lease script. KEYS: global hash, members hash. ARGV: member id, seq, weight, demand,
/// used, last_share, lease_ms, hold_ms, rate, version, nonce, ttl_ms, known_epoch (0: none).
/// Returns {share, lease_ms, target, epoch, rate, version, learning}.
///
/// Members hash: field = member id, value = "weight,demand,held,hold_until,lease_end,seq,claim"
/// (times in server ms; claim = the share it reported holding before a loss). Global hash: rate, ver, epoch, created, learn_until, last, n, spent.
///
/// Learning: when a member that knew an older epoch reaches a state younger than its hold
/// (the state was lost and recreated), every member gets at most the share it reports it
/// last held until `created + hold` (new members 0): members silent through the loss may
/// still be spending their last shares under the last-share policy.
#[cfg_attr(not(any(feature = "tokio", feature = "smol")), allow(dead_code))]
pub(crate) const LEASE: &str = r#"
local g, m = KEYS[1], KEYS[2]
for _, k in ipairs({g, m}) do
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'none' and t ~= 'hash' then
    return redis.error_reply('THROTTLE_WRONGTYPE ' .. k)
  end
end
local id = ARGV[1]
local seq, weight, demand = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local used, last_share = tonumber(ARGV[5]), tonumber(ARGV[6])
local lease_ms, hold_ms = tonumber(ARGV[7]), tonumber(ARGV[8])
local arg_rate, arg_ver = tonumber(ARGV[9]), tonumber(ARGV[10])
local nonce, ttl, known = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])

local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local st = redis.call('HMGET', g, 'rate', 'ver', 'epoch', 'learn_until', 'last', 'n', 'created')
local rate, ver, epoch, learn_until = tonumber(st[1]), tonumber(st[2]), tonumber(st[3]), tonumber(st[4])
local last, count, created = tonumber(st[5]), tonumber(st[6]), tonumber(st[7])
-- Lost state: the global hash is gone (restart, eviction, DEL), or members were recorded and
-- their hash is gone. Start a new epoch; members learn back at most what they held.
if (not epoch) or (not rate) or ((count or 0) > 0 and redis.call('EXISTS', m) == 0) then
  if last and last > now then now = last end
  redis.call('DEL', m)
  epoch = (now % 4294967296) * 1048576 + (nonce % 1048576)
  rate, ver = arg_rate, arg_ver
  created, learn_until = now, 0
  redis.call('HSET', g, 'epoch', epoch, 'created', created, 'learn_until', 0, 'rate', rate, 'ver', ver)
end
created = created or 0
learn_until = learn_until or 0
if known ~= 0 and known ~= epoch and now < created + hold_ms and learn_until < created + hold_ms then
  learn_until = created + hold_ms
  redis.call('HSET', g, 'learn_until', learn_until)
end
if last and last > now then now = last end
if arg_ver > ver then
  rate, ver = arg_rate, arg_ver
  redis.call('HSET', g, 'rate', rate, 'ver', ver)
end

local raw = redis.call('HGETALL', m)
local others, me = {}, nil
for i = 1, #raw, 2 do
  local f = raw[i]
  local w, d, held, hu, le, sq, cl =
    string.match(raw[i + 1], '^(%d+),(%d+),(%d+),(%d+),(%d+),(%d+),(%d+)$')
  if not w then
    redis.call('HDEL', m, f)
  else
    local e = {id = f, w = tonumber(w), d = tonumber(d), held = tonumber(held),
               hu = tonumber(hu), le = tonumber(le), seq = tonumber(sq), claim = tonumber(cl)}
    if f == id then
      me = e
    elseif now >= e.hu + lease_ms then
      redis.call('HDEL', m, f)
    elseif now < e.hu then
      table.insert(others, e)
    end
  end
end
local learning = 0
if now < learn_until then learning = 1 end

-- A repeated (or older) sequence number: answer from the record, grant nothing new.
if me and seq <= me.seq then
  local left = me.le - now
  if left < 0 then left = 0 end
  return {me.held, left, me.held, epoch, rate, ver, learning}
end

-- Weighted max-min (water-filling) over the reported demands of the live members. While
-- learning after lost state, each demand is capped by the member's claim (the share it held
-- before the loss): returning members share the rate as before (scaled down if the rate
-- fell meanwhile), newcomers get nothing.
local function want(d, claim)
  if learning == 1 and claim < d then return claim end
  return d
end
local all = {}
for _, e in ipairs(others) do table.insert(all, {w = e.w, d = want(e.d, e.claim), t = 0}) end
local mine = {w = weight, d = want(demand, last_share), t = 0}
table.insert(all, mine)
local rem, active = rate, {}
for _, e in ipairs(all) do if e.d > 0 then table.insert(active, e) end end
while #active > 0 do
  local sw = 0
  for _, e in ipairs(active) do sw = sw + e.w end
  local level = rem / sw
  local rest, capped = {}, false
  for _, e in ipairs(active) do
    if e.d <= level * e.w then
      e.t = e.d
      rem = rem - e.d
      capped = true
    else
      table.insert(rest, e)
    end
  end
  if not capped then
    for _, e in ipairs(rest) do e.t = math.floor(level * e.w) end
    break
  end
  active = rest
end
local target = mine.t

-- Never more than what the others leave: their shares stay reserved until they renew (or,
-- silent, until their hold ends), so the sum of shares in force never exceeds the rate.
local reserved = 0
for _, e in ipairs(others) do reserved = reserved + e.held end
local share = rate - reserved
if share < 0 then share = 0 end
if target < share then share = target end

local hu = now + lease_ms
if share > 0 then hu = hu + hold_ms end
redis.call('HSET', m, id, string.format('%d,%d,%d,%d,%d,%d,%d',
  weight, demand, share, hu, now + lease_ms, seq, last_share))
redis.call('HSET', g, 'last', now, 'n', #others + 1)
redis.call('HINCRBY', g, 'spent', used)
redis.call('PEXPIRE', g, ttl)
redis.call('PEXPIRE', m, ttl)
return {share, lease_ms, target, epoch, rate, ver, learning}
"#;

/// Changes the fleet rate. KEYS: global hash. ARGV: rate, nonce, hold_ms (unused), ttl_ms.
/// Returns {rate, version}; the version is the server time of the change (ms), so a later
/// change always wins, also over a client recreating lost state with an older rate.
#[cfg_attr(not(any(feature = "tokio", feature = "smol")), allow(dead_code))]
pub(crate) const SET_RATE: &str = r#"
local g = KEYS[1]
local t = redis.call('TYPE', g)['ok']
if t ~= 'none' and t ~= 'hash' then
  return redis.error_reply('THROTTLE_WRONGTYPE ' .. g)
end
local rate, nonce, hold_ms, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local st = redis.call('HMGET', g, 'epoch', 'last', 'ver')
local last, old = tonumber(st[2]), tonumber(st[3])
if last and last > now then now = last end
local ver = now
if old and old >= ver then ver = old + 1 end
if not st[1] then
  local epoch = (now % 4294967296) * 1048576 + (nonce % 1048576)
  redis.call('HSET', g, 'epoch', epoch, 'created', now, 'learn_until', 0)
end
redis.call('HSET', g, 'rate', rate, 'ver', ver, 'last', now)
redis.call('PEXPIRE', g, ttl)
return {rate, ver}
"#;

/// Permit script (seed 003). KEYS: permit hash. ARGV: min_interval_ms, max_permits,
/// window_ms, ttl_ms. Returns {1, time_to_wait, valid_at, expires_at, now} or
/// {0, wait_of_next_slot, 0, 0, now}.
///
/// Slots are `min_interval + window` apart: a permit may be used anywhere in
/// `[valid_at, expires_at = valid_at + window)`, so two uses are always at least
/// `min_interval` apart. A permit is granted when at most `max_permits` future permits
/// (valid later than now) would then be outstanding.
pub(crate) const PERMIT: &str = r#"
local p = KEYS[1]
local t = redis.call('TYPE', p)['ok']
if t ~= 'none' and t ~= 'hash' then
  return redis.error_reply('THROTTLE_WRONGTYPE ' .. p)
end
local mi, maxp, win, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local st = redis.call('HMGET', p, 'tat', 'last')
local tat, last = tonumber(st[1]), tonumber(st[2])
if last and last > now then now = last end
if (not tat) or tat < now then tat = now end
local slot = mi + win
local wait = tat - now
if wait > maxp * slot then
  redis.call('HSET', p, 'last', now)
  return {0, wait, 0, 0, now}
end
redis.call('HSET', p, 'tat', tat + slot, 'last', now)
local keep = tat + slot - now + ttl
redis.call('PEXPIRE', p, keep)
return {1, wait, tat, tat + win, now}
"#;
