-- wrk script: POST /send-sms as an internal caller would; done() prints one JSON line.
-- BENCH_TO is the number as the target expects it (the node peer forwards it untouched).
wrk.method = "POST"
wrk.body = '{"to": "' .. (os.getenv("BENCH_TO") or "+14155550100") .. '", "text": "Benchmark message"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_API_KEY") or ""

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "responses": %d, "non_2xx": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, '
      .. '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.duration, summary.requests, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max))
end
