-- wrk script for tests/bench/run.sh: one small non-streaming chat request,
-- identical for every target (the mock and nginx ignore the x-sluice-*
-- headers; Sluice strips them before forwarding).
--
-- Environment:
--   BENCH_MOCK_BASE   http://127.0.0.1:PORT of the mock (for x-sluice-custom-host)
--   BENCH_PACE_MS     if set, pace requests on each connection to one every
--                     BENCH_PACE_MS milliseconds (wrk2-style fixed schedule,
--                     built on wrk's delay() hook; Debian's wrk has no -R)
--   BENCH_OVERHEAD    if set, collect the x-sluice-overhead-us response header
--   BENCH_PROVIDER    x-sluice-provider (default openai)
--   BENCH_CONFIG      a routing config (x-sluice-config)
--
-- done() prints one machine-readable line: "BENCH key=value ...".

wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, how are you?"}],"max_tokens":32}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
-- BENCH_PROVIDER=anthropic: the same OpenAI request, translated by Sluice to
-- Anthropic's Messages API (the mock's /v1/messages) and back.
wrk.headers["x-sluice-provider"] = os.getenv("BENCH_PROVIDER") or "openai"
-- BENCH_CONFIG: a routing config sent as x-sluice-config.
if os.getenv("BENCH_CONFIG") then
    wrk.headers["x-sluice-config"] = os.getenv("BENCH_CONFIG")
end
wrk.headers["x-sluice-custom-host"] = (os.getenv("BENCH_MOCK_BASE") or "http://127.0.0.1:9") .. "/v1"

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local pace = tonumber(os.getenv("BENCH_PACE_MS") or "")
if pace then
    local ffi = require("ffi")
    ffi.cdef [[
        typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
        int clock_gettime(int clk, bench_timespec_t *ts);
    ]]
    local ts = ffi.new("bench_timespec_t")
    local function now_ms()
        ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
        return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
    end
    local due = nil
    -- Called before each request; returns the wait in whole milliseconds.
    -- Requests follow a fixed schedule (due += pace), so rounding and response
    -- time do not make the rate drift; a late request is not followed by a burst.
    function delay()
        local t = now_ms()
        if due == nil then
            due = t
        end
        due = due + pace
        local d = due - t
        if d < 0 then
            due = t
            return 0
        end
        return math.floor(d + 0.5)
    end
end

if os.getenv("BENCH_OVERHEAD") then
    ovh = {}
    function response(status, headers, body)
        local v = headers["x-sluice-overhead-us"] or headers["X-Sluice-Overhead-Us"]
        if v then
            ovh[#ovh + 1] = tonumber(v)
        end
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    local out = string.format(
        "BENCH requests=%d duration_us=%d rps=%.1f err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d lat_max_us=%d lat_mean_us=%.1f",
        summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean)
    local all = {}
    for _, t in ipairs(threads) do
        local v = t:get("ovh")
        if type(v) == "table" then
            for _, x in pairs(v) do
                all[#all + 1] = x
            end
        end
    end
    if #all > 0 then
        table.sort(all)
        local function pct(p)
            local i = math.floor(p / 100 * (#all - 1) + 0.5) + 1
            return all[i]
        end
        out = out .. string.format(" ovh_n=%d ovh_p50_us=%d ovh_p99_us=%d ovh_max_us=%d",
            #all, pct(50), pct(99), all[#all])
    end
    io.write(out .. "\n")
end
