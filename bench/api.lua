-- wrk script: GET a protected API with a Bearer access token; every response must be a 200.
-- env: BEARER (access token; empty for the unprotected floor)
wrk.method = "GET"
local bearer = os.getenv("BEARER") or ""
if bearer ~= "" then wrk.headers["Authorization"] = "Bearer " .. bearer end

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end

function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %.3f %.3f %d %d %d\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.status, b, e.connect + e.read + e.write + e.timeout))
end
