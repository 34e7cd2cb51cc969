-- Reads where a topic's stream stands, and its publications after a
-- position, atomically (a script runs alone: no publication lands between
-- the position and the entries).
--
-- KEYS[1]  the topic's meta hash (e: epoch, o: latest offset)
-- KEYS[2]  the topic's stream (entry id OFFSET-0, field d: the body)
-- ARGV[1]  a fresh epoch, kept when the topic has none: the epoch its next
--          publication carries, so every server reports the same one
-- ARGV[2]  the keys' time to live, in milliseconds (for a meta made here)
-- ARGV[3]  'replay': every publication after `since`, or none (false) when
--          any is gone, `since` is of another epoch or ahead, or more than
--          `count` are missed; 'page': up to `count` retained publications
--          after `since` (from the oldest when `since` is of another epoch)
-- ARGV[4]  the epoch of `since` ('' for none)
-- ARGV[5]  the offset of `since`
-- ARGV[6]  count
-- Returns {epoch, latest offset, entries or false}.

local epoch = redis.call('HGET', KEYS[1], 'e')
local top = 0
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  top = tonumber(redis.call('HGET', KEYS[1], 'o')) or 0
end
local after = tonumber(ARGV[5])
local count = tonumber(ARGV[6])
if ARGV[3] == 'replay' then
  if ARGV[4] ~= epoch or after > top or top - after > count then
    return {epoch, string.format('%d', top), false}
  end
  if after == top then
    return {epoch, string.format('%d', top), {}}
  end
  local entries = redis.call('XRANGE', KEYS[2], string.format('%d-0', after + 1), string.format('%d-0', top))
  -- Offsets are consecutive: all are there exactly when the count matches.
  if #entries ~= top - after then
    return {epoch, string.format('%d', top), false}
  end
  return {epoch, string.format('%d', top), entries}
end
if ARGV[4] ~= epoch then
  after = 0
end
if count == 0 or after >= top then
  return {epoch, string.format('%d', top), {}}
end
local entries = redis.call('XRANGE', KEYS[2], string.format('%d-0', after + 1), '+', 'COUNT', count)
return {epoch, string.format('%d', top), entries}
