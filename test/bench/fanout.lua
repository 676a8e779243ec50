-- wrk script for fan-out: POST a ~1 KiB event with a fresh id whose "time" is the send time with
-- microseconds (the sink measures publish-to-delivery latency from it). With RATE set (events/s
-- per connection), each connection waits between requests to offer a fixed rate.
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_usec; } hnd_timeval;
  int gettimeofday(hnd_timeval *tv, void *tz);
]]
local tv = ffi.new("hnd_timeval")
local counter = 0
local prefix
local pad = string.rep("x", 700)
local per_conn_delay_ms = nil

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)
  prefix = string.format("%d-%d-%d", os.time(), math.random(1, 1e9), tid or 0)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/cloudevents+json"
  local rate = tonumber(os.getenv("RATE") or "0")
  if rate > 0 then per_conn_delay_ms = 1000 / rate end
end

function delay()
  return per_conn_delay_ms or 0
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
