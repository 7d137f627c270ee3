-- wrk script: GET with a Bearer session; every response must be a 302 whose Location carries a code.
-- env: BEARER (session token)
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BEARER")

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end

function response(status, headers, body)
  local location = headers["location"] or headers["Location"] or ""
  if status ~= 302 or not string.find(location, "code=", 1, true) then bad = bad + 1 end
end

function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  -- RESULT requests seconds p50_ms p99_ms non2xx bad sock_errors (302 is not counted by wrk as an error)
  io.write(string.format("RESULT %d %.3f %.3f %.3f %d %d %d\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.status, b, e.connect + e.read + e.write + e.timeout))
end
