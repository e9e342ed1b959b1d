-- Braze audience mode: one send that gifts its own recipients ("punchh_audience":"recipients"),
-- each request a different recipient carrying its own guest identifier, made from a counter.
--   BENCH_CAMPAIGN, BENCH_SEND_KEY, BENCH_TOKEN  as braze.lua.
--   BENCH_UID_BASE     recipient i (0, 1, 2, ...) is Punchh user id BASE + i, email
--                      guest<BASE + i>@example.org.
--   BENCH_EMAIL_EVERY  n > 0: every n-th recipient has no punchh_user_id (Braze renders the
--                      unsynced attribute as ""), so the connector keeps its email instead.
--   BENCH_LIMIT        n > 0: exactly n recipients across all threads (thread k of BENCH_THREADS
--                      sends recipients k-1, k-1+T, ...); past its share a thread only asks
--                      GET /healthz, counted in "beyond", until bench/load.py stops wrk.

local prefix, health
local base, every, limit, nthreads = 0, 0, 0, 1
local counter = 0
-- wrk calls the first thread's request() once before the run to check the request it makes
-- (script_verify_request) and never sends it: that call gets the health check, so recipient 0
-- is not lost.
local checked = false
replays = 0
beyond = 0

function init(args)
  math.randomseed(os.time() * 100 + tid)
  local campaign = os.getenv("BENCH_CAMPAIGN") or "bench-campaign"
  local send_key = os.getenv("BENCH_SEND_KEY") or "bench-send"
  base = tonumber(os.getenv("BENCH_UID_BASE") or "100000")
  every = tonumber(os.getenv("BENCH_EMAIL_EVERY") or "0")
  limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
  nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  prefix = '{"punchh_audience":"recipients","punchh_redeemable":"Free Coffee",' ..
    '"campaign_id":"' .. campaign .. '","campaign_name":"Spring winback - lapsed guests",' ..
    '"send_key":"' .. send_key .. '","dispatch_id":"' .. send_key .. '","punchh_user_id":"'
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is required")
  health = wrk.format("GET", "/healthz", {}, nil)
end

function request()
  if tid == 1 and not checked then
    checked = true
    return health
  end
  local i = counter * nthreads + tid - 1
  counter = counter + 1
  if limit > 0 and i >= limit then
    beyond = beyond + 1
    return health
  end
  local uid = string.format("%d", base + i)
  local user_id = uid
  if every > 0 and i % every == every - 1 then user_id = "" end
  return wrk.format(nil, nil, nil,
    prefix .. user_id .. '","email":"guest' .. uid .. '@example.org","first_name":"Guest"}')
end
