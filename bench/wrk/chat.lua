-- wrk script for bench/run.sh: POSTs one small non-streaming chat-completions body with a client
-- key, and prints one machine-readable line at the end:
--   BENCH_JSON {"requests":..,"rps":..,"p50_us":..,...}
--
-- Environment:
--   BENCH_KEY     value sent in the api-key header (required)
--   BENCH_EXTRA_HEADER  optional "name: value" sent with every request (Portkey's x-portkey-config)
--   BENCH_STRICT  "1": also count every answer whose status is not exactly 200. That needs a
--                 response() callback, which makes wrk parse headers into Lua for every answer and
--                 costs client CPU, so run.sh only turns it on for the pre-flight/smoke runs. The
--                 measured runs rely on wrk's own counter of status >= 400 plus that pre-flight.

local key = os.getenv("BENCH_KEY") or error("BENCH_KEY is not set")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["api-key"] = key
local extra = os.getenv("BENCH_EXTRA_HEADER") or ""
if extra ~= "" then
    local name, value = string.match(extra, "^([^:]+):%s*(.*)$")
    if not name then error("BENCH_EXTRA_HEADER must be 'name: value'") end
    wrk.headers[name] = value
end
-- About 200 bytes, like a short single-turn chat request.
wrk.body = '{"model":"gpt-4o","messages":[{"role":"system","content":"You are a terse assistant."},'
    .. '{"role":"user","content":"Summarise the benefits of multi-region load balancing in one line."}],'
    .. '"max_tokens":32,"temperature":0}'

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

if os.getenv("BENCH_STRICT") == "1" then
    not200 = 0
    first_bad = ""
    function response(status, headers, body)
        if status ~= 200 then
            not200 = not200 + 1
            if first_bad == "" then first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 160) end
        end
    end
end

local function json_string(s)
    s = string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end)
    return '"' .. s .. '"'
end

function done(summary, latency, requests)
    local not200, first_bad = 0, ""
    for _, t in ipairs(threads) do
        not200 = not200 + (tonumber(t:get("not200")) or 0)
        local fb = t:get("first_bad")
        if first_bad == "" and fb then first_bad = fb end
    end
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
        '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status_ge_400":%d,"not_200":%d},' ..
        '"strict":%s,"body_bytes":%d,"first_bad":%s}\n',
        summary.requests, secs, summary.requests / secs, summary.bytes,
        latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max,
        e.connect, e.read, e.write, e.timeout, e.status, not200,
        os.getenv("BENCH_STRICT") == "1" and "true" or "false", #wrk.body, json_string(first_bad)))
end
