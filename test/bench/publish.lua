-- wrk script: POST a ~1 KiB structured CloudEvent with a fresh id on every request.
-- usage: wrk -t2 -c64 -d10s -s publish.lua http://127.0.0.1:PORT/events/api/v1/events
local counter = 0
local prefix
local pad = string.rep("x", 700)

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)
  prefix = string.format("%d-%d-%d", os.time(), math.random(1, 1e9), tid or 0)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/cloudevents+json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("HENDELSE_TOKEN") or "x")
end

local n = 0
function request()
  n = n + 1
  local body = '{"specversion":"1.0","id":"' .. prefix .. "-" .. n ..
    '","source":"https://bench.example/orders/' .. n ..
    '","type":"bench.order.created","subject":"/party/50001",' ..
    '"resource":"urn:altinn:resource:bench","time":"2026-01-01T10:00:00Z",' ..
    '"data":{"note":"' .. pad .. '"}}'
  return wrk.format(nil, nil, nil, body)
end
