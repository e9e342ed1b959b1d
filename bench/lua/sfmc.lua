-- SFMC Journey Builder execute calls: HS256 JWT bodies pre-signed by bench/load.py, one per
-- line of BENCH_TOKENS_FILE, each a different contact (definitionInstanceId) of one run.
-- Thread k of BENCH_THREADS sends lines k, k+n, k+2n, ... so no two threads send the same
-- contact; a thread that runs out starts again (each such request is counted in "replays":
-- a retried contact, not a new one; bench/load.py signs enough tokens to avoid it).

local tokens = {}
local idx = 0
local looped = false
replays = 0

function init(args)
  math.randomseed(os.time() * 100 + tid)
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  local i = 0
  for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
    if i % n == tid - 1 then tokens[#tokens + 1] = line end
    i = i + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/jwt"
end

function request()
  idx = idx + 1
  if idx > #tokens then idx = 1; looped = true end
  if looped then replays = replays + 1 end
  return wrk.format(nil, nil, nil, tokens[idx])
end
