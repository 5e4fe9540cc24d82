-- Shared by every scenario: each thread's index (the scripts split their inputs by it), pacing,
-- and one JSON line with the figures when the run ends.
-- BENCH_DELAY_MS paces each connection (wrk's delay()): a connection waits that long after each
-- answer before its next request, which holds the offered rate near connections / (delay + latency).

local counter = 0
function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
end

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "seconds": %.3f, "rps": %.2f, "p50_ms": %.3f, "p95_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end

-- BENCH_SHOW_ERRORS=1 prints the first answers that are not 2xx (for finding what a run got wrong).
if os.getenv("BENCH_SHOW_ERRORS") == "1" then
  local shown = 0
  function response(status, headers, body)
    if status >= 300 and shown < 3 then
      shown = shown + 1
      io.write("BENCH_ERROR " .. status .. " " .. body:sub(1, 600) .. "\n")
    end
  end
end
