-- wrk script for fan-out: POST a ~1 KiB event with a fresh id whose "time" is the send time with
-- microseconds (the sink measures publish-to-delivery latency from it). With RATE set (events/s in
-- all, split over THREADS wrk threads, default 2), requests are paced: every request takes the next
-- slot of a per-thread schedule (start + k / rate) and delay() waits until it, so the offered rate
-- does not depend on the response time as long as some connection is free (wrk's delay() is in
-- whole milliseconds; a schedule that has fallen more than 50 ms behind restarts from now rather
-- than sending a burst).
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_usec; } hnd_timeval;
  int gettimeofday(hnd_timeval *tv, void *tz);
]]
local tv = ffi.new("hnd_timeval")
local counter = 0
local prefix
local pad = string.rep("x", 700)
local interval_us = nil
local next_us = nil

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)
  prefix = string.format("%d-%d-%d", os.time(), math.random(1, 1e9), tid or 0)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/cloudevents+json"
  local rate = tonumber(os.getenv("RATE") or "0")
  local threads = tonumber(os.getenv("THREADS") or "2")
  if rate > 0 then interval_us = 1e6 * threads / rate end
end

local function now_us()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1e6 + tonumber(tv.tv_usec)
end

function delay()
  if not interval_us then return 0 end
  local now = now_us()
  if not next_us or next_us < now - 50000 then next_us = now end
  local wait = next_us - now
  next_us = next_us + interval_us
  return math.floor(wait / 1000 + 0.5)
end

local n = 0
function request()
  n = n + 1
  ffi.C.gettimeofday(tv, nil)
  local secs = tonumber(tv.tv_sec)
  local stamp = os.date("!%Y-%m-%dT%H:%M:%S", secs) .. string.format(".%06dZ", tonumber(tv.tv_usec))
  local body = '{"specversion":"1.0","id":"' .. prefix .. "-" .. n ..
    '","source":"https://bench.example/orders/' .. n ..
    '","type":"bench.order.created","subject":"/party/50001",' ..
    '"resource":"urn:altinn:resource:bench","time":"' .. stamp .. '",' ..
    '"data":{"note":"' .. pad .. '"}}'
  return wrk.format(nil, nil, nil, body)
end
