-- wrk script for the load-balancing part of tests/bench/run.sh (tests/bench/lb.sh).
--
-- * Loads tests/bench/wrk.lua (its path in BENCH_WRK_LUA) for the BENCHRESULT line
--   that run.sh parses.
-- * Every request carries `x-key: kI`, I cycling over 1..LB_KEYS (default 256), and,
--   when LB_COOKIES is set (newline-separated Cookie header values), a Cookie header
--   cycling over those (key I gets cookie (I-1) % #cookies + 1). The LB_KEYS requests
--   are formatted once per thread; request() hands them out in turn, so every route
--   costs wrk the same (one Lua call per request), whatever its policy reads.
-- * LB_HOSTS (newline-separated host names), the warm-up: request I gets Host
--   number (I-1) % #hosts + 1 instead of the one from -H or the URL.

dofile(assert(os.getenv("BENCH_WRK_LUA"), "BENCH_WRK_LUA: the path of tests/bench/wrk.lua"))

local keys = tonumber(os.getenv("LB_KEYS") or "") or 256
local cookies = {}
for c in string.gmatch(os.getenv("LB_COOKIES") or "", "[^\n]+") do
  cookies[#cookies + 1] = c
end
local hosts = {}
for h in string.gmatch(os.getenv("LB_HOSTS") or "", "[^\n]+") do
  hosts[#hosts + 1] = h
end

-- The access-control rows' credentials (lb.sh): LB_AUTH an Authorization value, LB_EXTRA_COOKIE
-- a cookie added to every Cookie header; both on every request of every route.
local auth = os.getenv("LB_AUTH") or ""
local extra = os.getenv("LB_EXTRA_COOKIE") or ""

local reqs, i = {}, 0

function init(args)
  for k = 1, keys do
    local h = {}
    for name, value in pairs(wrk.headers) do h[name] = value end -- Host (from -H) included
    h["x-key"] = "k" .. k
    if #cookies > 0 then h["Cookie"] = cookies[(k - 1) % #cookies + 1] end
    if extra ~= "" then h["Cookie"] = h["Cookie"] and (h["Cookie"] .. "; " .. extra) or extra end
    if auth ~= "" then h["Authorization"] = auth end
    if #hosts > 0 then h["Host"] = hosts[(k - 1) % #hosts + 1] end
    reqs[k] = wrk.format(nil, nil, h)
  end
end

function request()
  i = i % keys + 1
  return reqs[i]
end
