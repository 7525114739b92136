-- Rate limiter for wrk (used by scripts/bench-capture.sh): `wrk -t1 -cN ... -s rate.lua URL -- RATE`.
-- wrk calls delay() before each request of a connection; this hands out send slots from one
-- schedule per wrk thread (RATE / threads per second), so the aggregate rate is RATE whatever the
-- latency, as long as connections > RATE * latency. The clock is CLOCK_MONOTONIC via LuaJIT's FFI;
-- wrk truncates the delay to whole milliseconds, which only jitters individual sends.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local interval = 0.001
local next_slot = nil


function init(args)
  local rate = tonumber(args[1]) or 1000
  local nthreads = tonumber(args[2]) or 1
  interval = nthreads / rate
end

function delay()
  local t = now()
  if next_slot == nil then next_slot = t end
  local slot = next_slot
  next_slot = next_slot + interval
  -- A generator that fell behind (scheduling hiccup) catches up at most 20 ms worth of slots.
  if next_slot < t - 0.02 then next_slot = t - 0.02 end
  local d = (slot - t) * 1000
  if d < 0 then return 0 end
  return d
end
