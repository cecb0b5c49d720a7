-- wrk script: an open-loop load of k8sdm write requests (see tests/bench/_load.py).
--   wrk -t THREADS ... -s load.lua URL -- MODE RATE PREFIX THREADS [POOL_FILE]
-- MODE  create: POST creates only; mix: 60% updates, 20% creates, 20% deletes of a pool of
--       deployments (read from POOL_FILE, "identifier user" per line; each thread owns its share).
-- RATE  requests/s over all threads, sent on a fixed schedule whatever the latency (a request
--       that cannot be sent within 2 s of its slot is dropped and counted: the load is open-loop
--       as long as the connections suffice); 0 sends as fast as the connections allow.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec_t;
  int clock_gettime(int clk, timespec_t *ts);
]]
local ts = ffi.new("timespec_t")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  mode, rate, prefix, nthreads = args[1], tonumber(args[2]), args[3], tonumber(args[4])
  statuses, dropped, seq, next_slot = {}, 0, 0, nil
  pool = {}
  if args[5] then
    local i = 0
    for line in io.lines(args[5]) do
      if i % nthreads == tid then
        local ident, user = line:match("(%S+) (%S+)")
        table.insert(pool, {ident, user})
      end
      i = i + 1
    end
  end
  interval = rate > 0 and 1000 * nthreads / rate or 0
  math.randomseed(tid * 7919 + os.time())
end

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  next_slot = next_slot or now
  while next_slot < now - 2000 do
    next_slot = next_slot + interval
    dropped = dropped + 1
  end
  local slot = next_slot
  next_slot = next_slot + interval
  return math.max(0, slot - now)
end

local headers = {["Content-Type"] = "application/json", ["X-Forwarded-Proto"] = "https"}

-- 500 users, so the per-user rate limit never bites; the owner follows from the identifier.
function user_of(ident)
  local t, s = ident:match("-(%d+)-(%d+)$")
  return "bench-" .. ((tonumber(s) * 7 + tonumber(t)) % 500)
end

local function create()
  seq = seq + 1
  local ident = string.format("%s-%d-%d", prefix, tid, seq)
  headers["X-User-Id"] = user_of(ident)
  return wrk.format("POST", "/api/v1/deployments/requests/create", headers,
    string.format('{"identifier":"%s","image":"nginx:1.27","replicas":1}', ident))
end

function request()
  if mode == "create" or #pool == 0 then return create() end
  local r = math.random()
  if r < 0.2 then return create() end
  local i = math.random(#pool)
  local ident, user = pool[i][1], pool[i][2]
  headers["X-User-Id"] = user
  if r < 0.4 then
    pool[i] = pool[#pool]
    pool[#pool] = nil
    return wrk.format("DELETE", "/api/v1/deployments/requests/" .. ident, headers)
  end
  -- a new replica count and a new env value: always a change (never 400 nothing_to_change), a rollout
  seq = seq + 1
  return wrk.format("PATCH", "/api/v1/deployments/requests/" .. ident, headers,
    string.format('{"replicas":%d,"env":[{"name":"REV","value":"%s-%d-%d"}]}', seq % 3 + 1, prefix, tid, seq))
end

function response(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
  if mode == "mix" and status == 202 and body:find('"action":"CREATE"', 1, true) then
    local ident = body:match('"identifier":"([^"]+)"')
    if ident then table.insert(pool, {ident, user_of(ident)}) end
  end
end

function done(summary, latency, requests)
  local total, drops = {}, 0
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do total[code] = (total[code] or 0) + n end
    drops = drops + thread:get("dropped")
  end
  local parts = {}
  for code, n in pairs(total) do table.insert(parts, string.format('"%d": %d', code, n)) end
  io.write(string.format('RESULT {"statuses": {%s}, "dropped": %d, "errors": %d, "seconds": %.3f, ' ..
    '"p50_ms": %.2f, "p99_ms": %.2f}\n', table.concat(parts, ", "), drops,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
