-- Shared by every load script (bench/load.py puts it in front of braze.lua or sfmc.lua).
-- Parameters come from the environment (wrk runs the script once per thread):
--   BENCH_DELAY_MS  > 0: rate-limited mode, each connection waits about this long (uniform
--                   jitter 0.5x..1.5x) between its requests; 0: as fast as the server answers.
-- done() prints one line "BENCH_RESULT {json}" that bench/load.py parses; "replays" and
-- "beyond" sum the thread globals of those names (requests that were no new recipient).

local threads = {}
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

if delay_ms > 0 then
  function delay()
    return math.floor(delay_ms * (0.5 + math.random()) + 0.5)
  end
end

function done(summary, latency, requests)
  local replays, beyond = 0, 0
  for _, t in ipairs(threads) do
    replays = replays + (tonumber(t:get("replays")) or 0)
    beyond = beyond + (tonumber(t:get("beyond")) or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,"p50":%d,"p90":%d,' ..
    '"p95":%d,"p99":%d,"p999":%d},"replays":%d,"beyond":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9), replays, beyond))
end
