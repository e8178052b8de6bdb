-- wrk script for tests/bench/run.sh.
--
-- * BENCH_UPLOAD_BYTES=N (env): send every request as a POST with an N-byte
--   body (wrk adds the Content-Length header itself).
-- * done(): prints one machine-readable line that run.sh parses, so nothing
--   depends on wrk's human-readable output format:
--     BENCHRESULT requests=.. duration_us=.. bytes=.. p50_us=.. p99_us=..
--                 err_connect=.. err_read=.. err_write=.. err_timeout=.. err_status=..
--   err_status counts responses that were not 2xx/3xx.

local upload = tonumber(os.getenv("BENCH_UPLOAD_BYTES") or "")
if upload and upload > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("x", upload)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status))
end
