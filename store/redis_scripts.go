package store

import "github.com/redis/go-redis/v9"

// Every script gets the room's keys in the same order (all in one hash slot)
// and reads the time from Redis, so every replica agrees on deadlines and
// leases whatever its own clock says. Every write is followed by PEXPIREAT
// at the room's deadline, and nothing writes to a room whose meta key is
// gone, so no script can bring an expired or destroyed room back.
const (
	keyMeta    = iota // hash: created, deadline (unix ms)
	keySeats          // hash: member ID -> lease deadline (unix ms)
	keyNames          // hash: member ID -> sealed anonymous name
	keyLog            // stream: t (m|j|l), m (member ID), n (sealed name), b (sealed body)
	keyHistory        // stream: the log's messages only, under the same IDs
	keyCount
)

const luaPrelude = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- live_deadline is the room's deadline, or nil once it is gone or past it.
local function live_deadline(now)
  local d = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
  if d == nil or now >= d then return nil end
  return d
end
local function expire_all(d)
  for i = 1, #KEYS do redis.call('PEXPIREAT', KEYS[i], d) end
end
local function append(maxlen, ...)
  return redis.call('XADD', KEYS[4], 'MAXLEN', maxlen, '*', ...)
end
local function delete_room()
  redis.call('DEL', unpack(KEYS))
end
-- reap frees seats whose lease ran out (their server died or was cut off)
-- and tells the room they left.
local function reap(now, maxlen)
  local seats = redis.call('HGETALL', KEYS[2])
  local n = 0
  for i = 1, #seats, 2 do
    if tonumber(seats[i + 1]) <= now then
      local name = redis.call('HGET', KEYS[3], seats[i]) or ''
      redis.call('HDEL', KEYS[2], seats[i])
      redis.call('HDEL', KEYS[3], seats[i])
      append(maxlen, 't', 'l', 'm', seats[i], 'n', name)
      n = n + 1
    end
  end
  return n
end
`

// createScript ARGV: ttl ms. Returns {created, deadline}, or false when the
// ID is taken.
var createScript = redis.NewScript(luaPrelude + `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local now = now_ms()
local d = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'created', now, 'deadline', d)
redis.call('PEXPIREAT', KEYS[1], d)
return {now, d}
`)

// joinScript ARGV: member, sealed name, lease ms, capacity, maxlen, channel,
// history length. Returns {'ok', created, deadline, join entry ID, names
// (flat member/sealed name pairs), history (newest first)}, {'gone'} or
// {'full'}. Check and insert are one step, so the cap holds under any
// number of concurrent joins from any number of servers. History comes from
// its own stream, so joins and leaves never push messages out of it, and
// it ends just before the join entry, where the joiner's reading begins.
var joinScript = redis.NewScript(luaPrelude + `
local now = now_ms()
local d = live_deadline(now)
if not d then return {'gone'} end
local reaped = reap(now, ARGV[5])
if reaped > 0 then
  expire_all(d)
  redis.call('PUBLISH', ARGV[6], 'n')
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then return {'full'} end
local others = redis.call('HGETALL', KEYS[3])
local history = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', ARGV[7])
redis.call('HSET', KEYS[2], ARGV[1], now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
local id = append(ARGV[5], 't', 'j', 'm', ARGV[1], 'n', ARGV[2])
expire_all(d)
redis.call('PUBLISH', ARGV[6], 'n')
return {'ok', tonumber(redis.call('HGET', KEYS[1], 'created')), d, id, others, history}
`)

// sendScript ARGV: member, sealed name, sealed body, maxlen, channel,
// history length. Returns {'ok', entry ID}, {'gone'} or {'unseated'}.
var sendScript = redis.NewScript(luaPrelude + `
local now = now_ms()
local d = live_deadline(now)
if not d then return {'gone'} end
local lease = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if lease == nil or lease <= now then return {'unseated'} end
local id = append(ARGV[4], 't', 'm', 'm', ARGV[1], 'n', ARGV[2], 'b', ARGV[3])
redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[6], id, 't', 'm', 'm', ARGV[1], 'n', ARGV[2], 'b', ARGV[3])
expire_all(d)
redis.call('PUBLISH', ARGV[5], 'n')
return {'ok', id}
`)

// leaveScript ARGV: member, maxlen, channel. Returns 1 if the seat was
// given up, 0 if it was not held.
var leaveScript = redis.NewScript(luaPrelude + `
local now = now_ms()
local d = live_deadline(now)
if not d then return 0 end
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
local name = redis.call('HGET', KEYS[3], ARGV[1]) or ''
redis.call('HDEL', KEYS[3], ARGV[1])
append(ARGV[2], 't', 'l', 'm', ARGV[1], 'n', name)
expire_all(d)
redis.call('PUBLISH', ARGV[3], 'n')
return 1
`)

// refreshScript ARGV: lease ms, maxlen, channel, members held here...
// Renews the leases, frees dead seats, and returns {'ok', members whose
// seat is gone} or {'gone'}.
var refreshScript = redis.NewScript(luaPrelude + `
local now = now_ms()
local d = live_deadline(now)
if not d then return {'gone'} end
local reaped = reap(now, ARGV[2])
local lost = {}
for i = 4, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], now + tonumber(ARGV[1]))
  else
    table.insert(lost, ARGV[i])
  end
end
expire_all(d)
if reaped > 0 then redis.call('PUBLISH', ARGV[3], 'n') end
return {'ok', lost}
`)

// readScript ARGV: after entry ID, count. Returns {'ok', entries} or
// {'gone'}, so a reader learns in one step that the room vanished.
var readScript = redis.NewScript(luaPrelude + `
if not live_deadline(now_ms()) then return {'gone'} end
return {'ok', redis.call('XRANGE', KEYS[4], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
`)

// destroyScript ARGV: member, channel, sealed name. Deletes every key of
// the room, then tells every server. Returns 1, or 0 if the member holds no
// seat in a live room.
var destroyScript = redis.NewScript(luaPrelude + `
local d = live_deadline(now_ms())
if not d then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
delete_room()
redis.call('PUBLISH', ARGV[2], 'd' .. ARGV[1] .. ARGV[3])
return 1
`)

// expireScript deletes the room once Redis agrees its deadline has passed
// (PEXPIREAT would, a moment later; this makes "gone" exact).
var expireScript = redis.NewScript(luaPrelude + `
local d = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
if d ~= nil and now_ms() < d then return 0 end
delete_room()
return 1
`)
