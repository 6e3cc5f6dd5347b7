-- query.lua - wrk script: POST a random query, from a pre-generated set,
-- to /collections/{c}/points/query.
--
--   wrk ... -s bench/query.lua http://127.0.0.1:PORT -- QUERIES_FILE [COLLECTION]
--
-- QUERIES_FILE holds one JSON body per line (bench/gen_points queries).
-- Every request is formatted once per thread in init(); request() only
-- picks one, so the client spends its time on the network, not in Lua.
-- done() prints one machine-readable line for bench/http_bench.sh:
--   BENCH requests=N seconds=S qps=Q p50_us=.. p90_us=.. p99_us=.. max_us=..
--         non2xx=N errors=N (connect+read+write+timeout)

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

local reqs = {}

function init(args)
   local file = args[1] or os.getenv("BENCH_QUERIES")
   local coll = args[2] or os.getenv("BENCH_COLLECTION") or "bench"
   if file == nil then
      error("query.lua: pass the queries file after --")
   end
   local path = "/collections/" .. coll .. "/points/query"
   local headers = { ["Content-Type"] = "application/json" }
   for line in io.lines(file) do
      if #line > 0 then
         reqs[#reqs + 1] = wrk.format("POST", path, headers, line)
      end
   end
   if #reqs == 0 then
      error("query.lua: no queries in " .. file)
   end
   -- a different, reproducible sequence per thread
   math.randomseed(1000 + (id or 0))
end

function request()
   return reqs[math.random(#reqs)]
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "BENCH requests=%d seconds=%.3f qps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "non2xx=%d errors=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.status, e.connect + e.read + e.write + e.timeout))
end
