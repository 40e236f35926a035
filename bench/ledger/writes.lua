-- Unique-key writes for bench/bench_ledger.py, timed per request.
--
-- wrk 4 corrects its latency percentiles for coordinated omission by adding
-- synthetic samples; we want the real distribution, so each request is timed
-- here with CLOCK_MONOTONIC. Run with as many threads as connections (-t N -c N):
-- each thread then owns one connection with one request in flight, so request()
-- and response() alternate and the pair brackets exactly one request.
--
-- Environment: BENCH_TARGET = charter | etcd, BENCH_TAG = key prefix unique to
-- this wrk process, BENCH_OUT = file that done() writes the samples to.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Per-thread state (each thread has its own Lua state).
local target = os.getenv("BENCH_TARGET") or "charter"
local tag = os.getenv("BENCH_TAG") or "w"
local filler = string.rep("x", 100)
local counter = 0
local started = 0
lat = {}
ok = 0
bad = 0

function request()
  counter = counter + 1
  local key = string.format("%s-%d-%d", tag, tid, counter)
  -- ~100-byte value that differs per key.
  local value = string.sub(key .. "-" .. filler, 1, 100)
  local req
  if target == "etcd" then
    local body = '{"key":"' .. b64(key) .. '","value":"' .. b64(value) .. '"}'
    req = wrk.format("POST", "/v3/kv/put", { ["Content-Type"] = "application/json" }, body)
  else
    local body = '"' .. value .. '"'
    req = wrk.format("PUT", "/api/v1/tables/bench/" .. key .. "?wait=committed",
      { ["Content-Type"] = "application/json" }, body)
  end
  started = now_us()
  return req
end

function response(status, headers, body)
  local elapsed = now_us() - started
  if status >= 200 and status < 300 then
    ok = ok + 1
    lat[#lat + 1] = elapsed
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  local errs = summary.errors
  out:write(string.format("duration_us %d\n", summary.duration))
  out:write(string.format("socket_errors %d\n",
    errs.connect + errs.read + errs.write + errs.timeout))
  for _, thread in ipairs(threads) do
    out:write(string.format("thread %d %d\n", thread:get("ok"), thread:get("bad")))
    local samples = thread:get("lat")
    for i = 1, #samples do out:write(string.format("%d\n", samples[i])) end
  end
  out:close()
end
