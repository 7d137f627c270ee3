-- wrk script: POST one line of a file per request, each line used once (codes, refresh tokens, sign-in flows).
-- env: LINES (file; a line is "<Authorization header>\t<body>"), CONTENT_TYPE, EXPECT (Lua pattern the body
-- must match). Running out of lines sends an empty body, which fails the check: the run does not count.
local lines = {}
for line in io.lines(os.getenv("LINES")) do table.insert(lines, line) end
local expect = os.getenv("EXPECT")
local content_type = os.getenv("CONTENT_TYPE") or "application/x-www-form-urlencoded"
local threads = {}
local next_line = 1

function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end

function request()
  local line = lines[next_line] or "\t"
  next_line = next_line + 1
  local tab = string.find(line, "\t", 1, true)
  local headers = { ["Content-Type"] = content_type, ["Authorization"] = string.sub(line, 1, tab - 1) }
  return wrk.format("POST", nil, headers, string.sub(line, tab + 1))
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, expect) then bad = bad + 1 end
end

function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  -- RESULT requests seconds p50_ms p99_ms non2xx bad sock_errors
  io.write(string.format("RESULT %d %.3f %.3f %.3f %d %d %d\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.status, b, e.connect + e.read + e.write + e.timeout))
end
