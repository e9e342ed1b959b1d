-- Braze fan-out: one send (campaign + send key), a different recipient in every request.
--   BENCH_CAMPAIGN, BENCH_SEND_KEY  name the send; BENCH_TOKEN  the webhook bearer token.
-- The body is what a Braze webhook template of the connector renders, plus the guest fields
-- Braze templates usually carry (the connector must drop them).

local prefix
local counter = 0
replays = 0

function init(args)
  math.randomseed(os.time() * 100 + tid)
  local campaign = os.getenv("BENCH_CAMPAIGN") or "bench-campaign"
  local send_key = os.getenv("BENCH_SEND_KEY") or "bench-send"
  prefix = '{"punchh_segment":"Lapsed 90 days","punchh_redeemable":"Free Coffee",' ..
    '"campaign_id":"' .. campaign .. '","campaign_name":"Spring winback - lapsed guests",' ..
    '"send_key":"' .. send_key .. '","dispatch_id":"' .. send_key .. '","user_id":"'
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is required")
end

function request()
  counter = counter + 1
  local uid = "bu-" .. tid .. "-" .. counter
  return wrk.format(nil, nil, nil,
    prefix .. uid .. '","email":"' .. uid .. '@example.org","first_name":"Guest"}')
end
