-- wrk script: prints one JSON line with the figures bench.py reads (latency in microseconds).
done = function(summary, latency, requests)
    local seconds = summary.duration / 1e6
    local errors = summary.errors
    io.write(string.format(
        '{"requests":%d,"seconds":%.3f,"requests_per_second":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
        '"max_us":%d,"mean_us":%.1f,"bytes":%d,"non_2xx":%d,"socket_errors":%d}\n',
        summary.requests, seconds, summary.requests / seconds,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
        summary.bytes, errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
