package redisstore

import "github.com/redis/go-redis/v9"

// Every room script gets the room's keys in the order of the key indexes
// (all in one hash slot) and reads the time from Redis, so every replica
// agrees on deadlines whatever its own clock says. Every write is followed
// by PEXPIREAT at the room's deadline, and nothing writes to a room whose
// meta key is gone, so no script can bring an expired or destroyed room
// back. Notifications are SPUBLISHed on the room's channel, which is in
// the room's slot: on a cluster they stay on the node that ran the script.
//
// Each script declares its flags (Redis 7), which decide what a full Redis
// (maxmemory, noeviction) does with it:
//   - "#!lua": may add data, so a full Redis refuses it before it runs
//     (an OOM error, never half a script): new rooms, seats and messages;
//   - "#!lua flags=allow-oom": frees data or adds a few bytes that keep
//     people in their rooms (leave, destroy, liveness), so it runs anyway;
//   - "#!lua flags=no-writes": reads only.

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
-- id_less orders two stream IDs ('ms-seq').
local function id_less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
-- note_cut records that every entry up to id is trimmed from the log or
-- the history: a reader that has not read that far has lost something.
local function note_cut(id)
  local cut = redis.call('HGET', KEYS[1], 'cut')
  if not cut or id_less(cut, id) then redis.call('HSET', KEYS[1], 'cut', id) end
end
-- append adds an entry to the log, keeping its newest maxlen entries. The
-- log's entries are small and bounded (IDs, a sealed name; a message's is
-- a reference to its history entry), so its length bounds its bytes.
local function append(maxlen, ...)
  local id = redis.call('XADD', KEYS[4], '*', ...)
  local over = redis.call('XLEN', KEYS[4]) - tonumber(maxlen)
  if over > 0 then
    local oldest = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', over + 1)
    redis.call('XTRIM', KEYS[4], 'MINID', oldest[over + 1][1])
    note_cut(oldest[over][1])
  end
  return id
end
-- field reads one field of a stream entry's flat field list.
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end
-- trim_history takes the oldest messages out of the history until its
-- newest ones fit both limit messages and budget bytes (the sum of their
-- costs, 'c'), and keeps that sum in the meta key ('hb'). added is the cost
-- of a message just added.
local function trim_history(limit, budget, added)
  limit, budget = tonumber(limit), tonumber(budget)
  local bytes = (tonumber(redis.call('HGET', KEYS[1], 'hb')) or 0) + tonumber(added)
  local n = redis.call('XLEN', KEYS[5])
  local cut
  while n > 0 and (n > limit or bytes > budget) do
    local oldest = redis.call('XRANGE', KEYS[5], '-', '+', 'COUNT', 1)[1]
    bytes = bytes - (tonumber(field(oldest[2], 'c')) or 0)
    redis.call('XDEL', KEYS[5], oldest[1])
    cut = oldest[1]
    n = n - 1
  end
  redis.call('HSET', KEYS[1], 'hb', bytes)
  if cut then note_cut(cut) end
end
local function delete_room()
  redis.call('DEL', unpack(KEYS))
end
local function is_sealed()
  return redis.call('HGET', KEYS[1], 'sealed') == '1'
end
-- replica_of reads the replica out of a seat ('replica/presence').
local function replica_of(seat)
  return string.match(seat, '^[^/]*')
end
-- drop_owner forgets the key digest of member m: its key opens nothing.
local function drop_owner(m)
  local owners = redis.call('HGETALL', KEYS[7])
  for i = 1, #owners, 2 do
    if owners[i + 1] == m then redis.call('HDEL', KEYS[7], owners[i]) end
  end
end
-- drop_away forgets every member who is away, but keep.
local function drop_away(keep)
  local names = redis.call('HGETALL', KEYS[3])
  for i = 1, #names, 2 do
    local m = names[i]
    if m ~= keep and redis.call('HEXISTS', KEYS[2], m) == 0 then
      redis.call('HDEL', KEYS[3], m)
      redis.call('HDEL', KEYS[1], 'j:' .. m)
      drop_owner(m)
    end
  end
end
-- retire marks the presence of seat (a seat value, or nil) as used up:
-- join and rejoin refuse it, so a copy of the request that took the seat,
-- arriving late (its bytes held up on another connection), cannot take
-- it again once it was given up or taken over. One field per seat ever
-- ended, which joins pay for, gone with the room.
local function retire(seat)
  if seat then redis.call('HSET', KEYS[1], 'w:' .. string.match(seat, '[^/]*$'), '1') end
end
-- depart takes member m out of the room and tells it. A sealed room keeps
-- m's seat for m; otherwise m alone may take it back, until someone else
-- leaves after m.
local function depart(maxlen, m)
  retire(redis.call('HGET', KEYS[2], m))
  redis.call('HDEL', KEYS[2], m)
  local sealed = is_sealed()
  if not sealed then drop_away(m) end
  local name = redis.call('HGET', KEYS[3], m) or ''
  local kept = '0'
  if sealed then kept = '1' end
  append(maxlen, 't', 'l', 'm', m, 'n', name, 'k', kept)
end
-- seal_if_met seals the room once capacity people are in it: their seats
-- are kept for them, and whoever is away is forgotten.
local function seal_if_met(capacity)
  if not is_sealed() and redis.call('HLEN', KEYS[2]) >= tonumber(capacity) then
    redis.call('HSET', KEYS[1], 'sealed', '1')
    drop_away(nil)
  end
end
-- sealed_flag is how replies say whether the room is sealed.
local function sealed_flag()
  if is_sealed() then return 1 end
  return 0
end
-- reap takes the members seated on the replicas named in ARGV[from..]
-- (found dead by their callers) out of the room.
local function reap(maxlen, from)
  if #ARGV < from then return 0 end
  local dead = {}
  for i = from, #ARGV do dead[ARGV[i]] = true end
  local seats = redis.call('HGETALL', KEYS[2])
  local n = 0
  for i = 1, #seats, 2 do
    if dead[replica_of(seats[i + 1])] then
      depart(maxlen, seats[i])
      n = n + 1
    end
  end
  return n
end
`

// createScript ARGV: ttl ms. Returns {created, deadline}, or nil when the
// ID is taken.
var createScript = redis.NewScript("#!lua\n" + luaPrelude + `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local now = now_ms()
local d = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'created', now, 'deadline', d)
redis.call('PEXPIREAT', KEYS[1], d)
return {now, d}
`)

// joinScript ARGV: 1 member, 2 sealed name, 3 replica, 4 presence,
// 5 capacity, 6 maxlen, 7 channel, 8 history length, 9 key digest,
// 10 name checked (0|1), 11.. replicas known to be dead. Returns {'ok',
// created, deadline, join entry ID, seats (flat member / seat pairs, the
// joiner's included), names (flat member / sealed name pairs), history
// (newest first), sealed (0|1)}, {'gone'}, {'sealed'}, {'full', seats} or
// {'names', sealed name given away, names}: a seat of this room was given
// away (reopenScript), and a name not checked against that one's and the
// others' takes nothing; the caller picks another and tries again. The seats of dead
// replicas are freed first; then check and insert are one step, so the
// cap holds under any number of concurrent joins from any number of
// replicas, and the join that brings two people together seals the room.
// History comes from its own stream, so joins and leaves never push
// messages out of it, and it ends just before the join entry, where the
// joiner's reading begins.
//
// A join is idempotent: member and presence, chosen before its first try,
// name it. A repeat of a join that took its seat (its answer was lost)
// answers that seat again, with the same join entry; a join withdrawn
// (withdrawScript), or whose seat was given up or taken over since
// (retire), takes nothing, however late a copy of it arrives.
var joinScript = redis.NewScript("#!lua\n" + luaPrelude + `
local now = now_ms()
local d = live_deadline(now)
if not d then return {'gone'} end
if redis.call('HEXISTS', KEYS[1], 'w:' .. ARGV[4]) == 1 then return {'gone'} end
local mine = ARGV[3] .. '/' .. ARGV[4]
local id = false
if redis.call('HGET', KEYS[2], ARGV[1]) == mine then
  id = redis.call('HGET', KEYS[1], 'j:' .. ARGV[1])
end
if not id then
  if reap(ARGV[6], 11) > 0 then
    expire_all(d)
    redis.call('SPUBLISH', ARGV[7], 'n')
  end
  if is_sealed() then return {'sealed'} end
  local seats = redis.call('HGETALL', KEYS[2])
  if #seats / 2 >= tonumber(ARGV[5]) then return {'full', seats} end
  local given = redis.call('HGET', KEYS[1], 'o')
  if given and ARGV[10] ~= '1' then return {'names', given, redis.call('HGETALL', KEYS[3])} end
  redis.call('HSET', KEYS[2], ARGV[1], mine)
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[7], ARGV[9], ARGV[1])
  id = append(ARGV[6], 't', 'j', 'm', ARGV[1], 'n', ARGV[2], 'r', ARGV[3])
  redis.call('HSET', KEYS[1], 'j:' .. ARGV[1], id)
  seal_if_met(ARGV[5])
  expire_all(d)
  redis.call('SPUBLISH', ARGV[7], 'n')
end
return {'ok', tonumber(redis.call('HGET', KEYS[1], 'created')), d, id, redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]), redis.call('XREVRANGE', KEYS[5], '(' .. id, '-', 'COUNT', ARGV[8]), sealed_flag()}
`)

// rejoinScript ARGV: 1 key digest, 2 replica, 3 presence, 4 capacity,
// 5 maxlen, 6 channel, 7 history length, 8.. replicas known to be dead.
// Returns {'ok', created, deadline, join entry ID, seats (the rejoiner's
// included), names, history, sealed, member}, or {'gone'} for an unknown
// room and for a digest that opens no seat alike, or {'given'} for the
// digest of a seat given away (reopenScript). A digest opens a seat
// while the room keeps it for its member: the others leave a seat free
// for them, and a sealed room keeps seats for its two people only. A seat
// in use is taken over: its presence changes, and the replica holding the
// old one ends it when it reads the join entry. Repeats and withdrawals
// are as for joinScript.
var rejoinScript = redis.NewScript("#!lua\n" + luaPrelude + `
local now = now_ms()
local d = live_deadline(now)
if not d then return {'gone'} end
if redis.call('HEXISTS', KEYS[1], 'w:' .. ARGV[3]) == 1 then return {'gone'} end
local reaped = reap(ARGV[5], 8)
local member = redis.call('HGET', KEYS[7], ARGV[1])
local mine = ARGV[2] .. '/' .. ARGV[3]
local id = false
if member and redis.call('HGET', KEYS[2], member) == mine then
  id = redis.call('HGET', KEYS[1], 'j:' .. member)
end
if not id then
  local others = 0
  local seats = redis.call('HGETALL', KEYS[2])
  for i = 1, #seats, 2 do
    if seats[i] ~= member then others = others + 1 end
  end
  local given = member and string.sub(member, 1, 1) == '!'
  if not member or given or others >= tonumber(ARGV[4])
    or (is_sealed() and redis.call('HEXISTS', KEYS[3], member) == 0) then
    if reaped > 0 then
      expire_all(d)
      redis.call('SPUBLISH', ARGV[6], 'n')
    end
    if given then return {'given'} end
    return {'gone'}
  end
  local name = redis.call('HGET', KEYS[3], member) or ''
  retire(redis.call('HGET', KEYS[2], member))
  redis.call('HSET', KEYS[2], member, mine)
  id = append(ARGV[5], 't', 'j', 'm', member, 'n', name, 'r', ARGV[2], 'b', '1')
  redis.call('HSET', KEYS[1], 'j:' .. member, id)
  seal_if_met(ARGV[4])
  expire_all(d)
  redis.call('SPUBLISH', ARGV[6], 'n')
end
return {'ok', tonumber(redis.call('HGET', KEYS[1], 'created')), d, id, redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]), redis.call('XREVRANGE', KEYS[5], '(' .. id, '-', 'COUNT', ARGV[7]), sealed_flag(), member}
`)

// withdrawScript ARGV: 1 member (for a rejoin, the key digest that names
// it), 2 seat (replica/presence), 3 maxlen, 4 channel, 5 whole (1 for a
// join, 0 for a rejoin). Undoes a join or
// rejoin whose answer never came and whose caller gave up: whatever copy
// of it arrives later takes nothing. A withdrawn join leaves no trace of
// its member (nobody ever held its key): its seat is freed, kept or not,
// and a room it sealed is unsealed, so the person it was for can join. A
// withdrawn rejoin gives its seat up as leaveScript does. Returns 1 if
// anything was undone, else 0.
var withdrawScript = redis.NewScript("#!lua flags=allow-oom\n" + luaPrelude + `
local d = live_deadline(now_ms())
if not d then return 0 end
local m = ARGV[1]
if ARGV[5] ~= '1' then m = redis.call('HGET', KEYS[7], ARGV[1]) end
redis.call('HSET', KEYS[1], 'w:' .. string.match(ARGV[2], '[^/]*$'), '1')
if not m then return 0 end
local seat = redis.call('HGET', KEYS[2], m)
if seat and seat ~= ARGV[2] then return 0 end
if ARGV[5] ~= '1' then
  if not seat then return 0 end
  depart(ARGV[3], m)
else
  local name = redis.call('HGET', KEYS[3], m)
  if not seat and not name then return 0 end
  redis.call('HDEL', KEYS[2], m)
  redis.call('HDEL', KEYS[3], m)
  redis.call('HDEL', KEYS[1], 'j:' .. m)
  drop_owner(m)
  if is_sealed() then redis.call('HSET', KEYS[1], 'sealed', '0') end
  if seat then
    append(ARGV[3], 't', 'l', 'm', m, 'n', name or '', 'k', '0')
  else
    append(ARGV[3], 't', 'o', 'm', m, 'n', name or '')
  end
end
expire_all(d)
redis.call('SPUBLISH', ARGV[4], 'n')
return 1
`)

// sendScript ARGV: 1 member, 2 seat (replica/presence), 3 sealed name,
// 4 sealed body, 5 message ID, 6 maxlen, 7 channel, 8 history length,
// 9 how long message IDs are remembered (ms), 10 history bytes, 11 the
// message's cost (store.MessageCost). Returns {'ok', entry ID, the log's
// entry before it}, {'dup'} when the message ID is stored already (an
// earlier attempt went through), {'gone'} or {'unseated'} (the seat is no
// longer this one's: freed, or taken over by its person's newer
// connection). The message is kept once, in the history; its log entry,
// under the same ID, refers to it (see readScript). The history then keeps
// its newest messages that fit both its length and its bytes.
//
// The notification carries the message itself, with the entry before it
// (see parseNews): a replica that has read up to that entry delivers it
// without reading the log, which would cost Redis more than the send.
var sendScript = redis.NewScript("#!lua\n" + luaPrelude + `
if redis.call('ZSCORE', KEYS[6], ARGV[5]) then return {'dup'} end
local now = now_ms()
local d = live_deadline(now)
if not d then return {'gone'} end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return {'unseated'} end
local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)[1]
local prev = '0-0'
if last then prev = last[1] end
local id = append(ARGV[6], 't', 'm')
redis.call('XADD', KEYS[5], id, 't', 'm', 'm', ARGV[1], 'n', ARGV[3], 'b', ARGV[4], 'i', ARGV[5], 'c', ARGV[11])
trim_history(ARGV[8], ARGV[10], ARGV[11])
redis.call('ZADD', KEYS[6], now, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. (now - tonumber(ARGV[9])))
expire_all(d)
redis.call('SPUBLISH', ARGV[7], 'm' .. prev .. ' ' .. id .. ' ' .. ARGV[1] .. ' ' .. ARGV[5] .. ' ' .. #ARGV[3] .. ' ' .. ARGV[3] .. ARGV[4])
return {'ok', id, prev}
`)

// storedScript ARGV: message ID. Returns 1 if the room stored it lately,
// else 0. It reads only, so it answers even when Redis is full: a send
// refused as "full" may have gone through on an earlier attempt.
var storedScript = redis.NewScript("#!lua flags=no-writes\n" + `
if redis.call('ZSCORE', KEYS[6], ARGV[1]) then return 1 end
return 0
`)

// leaveScript ARGV: member, seat (replica/presence), maxlen, channel.
// Returns 1 if the member left, 0 if that seat was not theirs (any more).
// In a sealed room the seat is kept for the member, who is then away.
var leaveScript = redis.NewScript("#!lua flags=allow-oom\n" + luaPrelude + `
local now = now_ms()
local d = live_deadline(now)
if not d then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
depart(ARGV[3], ARGV[1])
expire_all(d)
redis.call('SPUBLISH', ARGV[4], 'n')
return 1
`)

// reopenScript ARGV: member, seat (replica/presence), maxlen, channel.
// Gives up the seat kept for the other member, who must be away: the room
// is no longer sealed, their key digest opens nothing but is remembered as
// given away ('!' before the member, see rejoinScript) until the room
// ends, and their sealed name is kept ('o') for joinScript to avoid. Returns {'ok'},
// {'none'} when no seat is kept for someone away, {'unseated'} or {'gone'}.
var reopenScript = redis.NewScript("#!lua flags=allow-oom\n" + luaPrelude + `
local d = live_deadline(now_ms())
if not d then return {'gone'} end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return {'unseated'} end
if not is_sealed() then return {'none'} end
local names = redis.call('HGETALL', KEYS[3])
local other, name
for i = 1, #names, 2 do
  if names[i] ~= ARGV[1] then other, name = names[i], names[i + 1] end
end
if not other or redis.call('HEXISTS', KEYS[2], other) == 1 then return {'none'} end
redis.call('HDEL', KEYS[3], other)
local owners = redis.call('HGETALL', KEYS[7])
for i = 1, #owners, 2 do
  if owners[i + 1] == other then redis.call('HSET', KEYS[7], owners[i], '!' .. other) end
end
redis.call('HSET', KEYS[1], 'sealed', '0', 'o', name)
append(ARGV[3], 't', 'o', 'm', other, 'n', name)
expire_all(d)
redis.call('SPUBLISH', ARGV[4], 'n')
return {'ok'}
`)

// reapScript ARGV: maxlen, channel, dead replicas... Takes the members
// seated on those replicas out of the room and returns how many.
var reapScript = redis.NewScript("#!lua flags=allow-oom\n" + luaPrelude + `
local d = live_deadline(now_ms())
if not d then return 0 end
local n = reap(ARGV[1], 3)
if n > 0 then
  expire_all(d)
  redis.call('SPUBLISH', ARGV[2], 'n')
end
return n
`)

// readScript ARGV: after entry ID, count. Returns {'ok', entries}: the
// log's entries after that one, a message's taken from the history (its
// log entry only refers to it); {'gap', cut} when something after that
// entry is trimmed already (from the log, or a message from the history):
// a reader that has not read up to cut lost it, and must not go on as if
// it had not; or {'gone'}, so a reader learns in one step that the room
// vanished.
var readScript = redis.NewScript("#!lua flags=no-writes\n" + luaPrelude + `
if not live_deadline(now_ms()) then return {'gone'} end
local cut = redis.call('HGET', KEYS[1], 'cut')
if cut and id_less(ARGV[1], cut) then return {'gap', cut} end
local entries = redis.call('XRANGE', KEYS[4], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
for i, e in ipairs(entries) do
  if field(e[2], 't') == 'm' then
    local kept = redis.call('XRANGE', KEYS[5], e[1], e[1])[1]
    if not kept then return {'gap', e[1]} end
    entries[i] = kept
  end
end
return {'ok', entries}
`)

// destroyScript ARGV: member, seat (replica/presence), channel, sealed
// name. Deletes every key of the room, then tells every replica. Returns
// 1, or 0 if that seat is not the member's in a live room.
var destroyScript = redis.NewScript("#!lua flags=allow-oom\n" + luaPrelude + `
local d = live_deadline(now_ms())
if not d then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
delete_room()
redis.call('SPUBLISH', ARGV[3], 'd' .. ARGV[1] .. ARGV[4])
return 1
`)

// expireScript deletes the room once Redis agrees its deadline has passed
// (PEXPIREAT would, a moment later; this makes "gone" exact). Returns 0
// when the room is gone, or how many ms it has left by Redis's clock.
var expireScript = redis.NewScript("#!lua flags=allow-oom\n" + luaPrelude + `
local d = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
if d ~= nil then
  local now = now_ms()
  if now < d then return d - now end
end
delete_room()
return 0
`)

// Liveness: one sorted set of replicas scored by their last heartbeat (Redis
// time), and a clock hash with the time of the last heartbeat from anyone
// and the start of the current epoch. An epoch starts whenever heartbeats
// stopped for longer than a gap: Redis was paused, restarted or failed
// over, or every replica was down. Nobody is found dead until a lease has
// passed in the epoch, so an outage of Redis itself never costs a seat:
// every living replica has a whole lease after it to beat again. A third
// sorted set holds the replicas that said they are gone, by when: their
// beats count no more.

// liveKeys are the liveness keys, in one hash slot.
var liveKeys = []string{keyPrefix + "{live}:replicas", keyPrefix + "{live}:clock", keyPrefix + "{live}:gone"}

const livePrelude = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// heartbeatScript ARGV: replica, lease ms, gap ms, retention ms. Records
// the beat, unless the replica departed (a beat sent before its depart,
// or while Close waited on it, may arrive after), and returns {alive
// replicas, dead replicas}: those that beat within the lease, and those
// known that did not.
var heartbeatScript = redis.NewScript("#!lua flags=allow-oom\n" + livePrelude + `
local now = now_ms()
local lease, gap, retain = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', KEYS[2], 'last'))
local epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch'))
if last == nil or epoch == nil or now < last or now - last > gap then epoch = now end
redis.call('HSET', KEYS[2], 'last', now, 'epoch', epoch)
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then redis.call('ZADD', KEYS[1], now, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - retain))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - retain))
redis.call('PEXPIRE', KEYS[1], retain)
redis.call('PEXPIRE', KEYS[2], retain)
redis.call('PEXPIRE', KEYS[3], retain)
if now - epoch < lease then return {redis.call('ZRANGE', KEYS[1], 0, -1), {}} end
return {
  redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - lease), '+inf'),
  redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - lease),
}
`)

// deadScript ARGV: lease ms, gap ms, replicas... Returns those of the
// replicas that are dead: not beating for a lease of the current epoch,
// or unknown. While heartbeats have stopped (an outage, or no replica
// left), nobody is.
var deadScript = redis.NewScript("#!lua flags=no-writes\n" + livePrelude + `
local now = now_ms()
local lease, gap = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[2], 'last'))
local epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch'))
if last == nil or epoch == nil or now - last > gap or now - epoch < lease then return {} end
local dead = {}
for i = 3, #ARGV do
  local beat = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]))
  if beat == nil or beat <= now - lease then table.insert(dead, ARGV[i]) end
end
return dead
`)

// departScript ARGV: replica, lease ms, retention ms. A replica that
// closes says so: it is dead from now on, as if its last beat were a
// lease ago, and known as dead (not forgotten: the retention trims it like
// any dead replica), so should it have failed to give up a seat, its
// partner's replica frees it. It is noted as gone, so that no beat of it
// arriving later brings it back.
var departScript = redis.NewScript("#!lua flags=allow-oom\n" + livePrelude + `
local now = now_ms()
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return redis.call('ZADD', KEYS[1], now - tonumber(ARGV[2]), ARGV[1])
`)
