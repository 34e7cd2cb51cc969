-- Publishes one publication of a topic, atomically (a script runs alone):
-- gives it the topic's next offset, keeps it in the topic's stream and
-- announces it on the topic's channel. So the channel carries a topic's
-- publications in offset order, and every server sees the same order.
--
-- KEYS[1]  the topic's meta hash (e: epoch, o: latest offset)
-- KEYS[2]  the topic's stream (entry id OFFSET-0, field d: the body)
-- ARGV[1]  the topic's channel
-- ARGV[2]  the keys' time to live, in milliseconds
-- ARGV[3]  how many publications the stream keeps (0: none)
-- ARGV[4]  a fresh epoch, used when the topic has none
-- ARGV[5]  the publication's body
-- Returns {epoch, offset}.

-- 1. The topic's epoch; a topic without one (never published to, expired,
--    or lost with Redis's data) starts a new epoch, and a stream left
--    without its meta belongs to a lost epoch.
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
-- 2. The next offset.
local offset = string.format('%d', redis.call('HINCRBY', KEYS[1], 'o', 1))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
-- 3. Kept in the stream, the oldest trimmed past the history size.
local keep = tonumber(ARGV[3])
if keep > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-0', 'd', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
-- 4. Announced to every server watching the topic.
redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. offset .. ' ' .. ARGV[5])
return {epoch, offset}
