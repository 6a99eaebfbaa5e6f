-- wrk script: POST one AdmissionReview body and check every response before it counts.
--
-- Configured through the environment (top-level code runs in every thread's Lua state):
--   BENCH_BODY          file with the request body
--   BENCH_UID           the uid every response must carry
--   BENCH_PATCH         file with the exact base64 patch expected ("" = any patch)
--   BENCH_SAMPLE        path prefix: every BENCH_SAMPLE_EVERY-th body is appended to
--                       <prefix>.<thread> (one body per line) for the Python-side check
--   BENCH_SAMPLE_EVERY  default 500
--   BENCH_SAMPLE_MAX    bodies kept per thread, default 40
--   BENCH_VARY          "" (default): every request sends the body as is;
--                       "label": the body holds the placeholder BENCHVARY000000 (a label value) and
--                       every request gets a value of its own (every body distinct, same uid);
--                       "uid": the placeholder is the request's uid: every request gets a uid of its
--                       own (bodies identical but for the uid, like the Pods of one ReplicaSet) and
--                       every response must carry the uid of a request still waiting for its answer
--   BENCH_VARY_BASE     the first varied value of this run (the caller gives each run its own, so
--                       values never repeat across runs against one server)
--   BENCH_LIMIT         stop a thread after this many responses (0 = run for -d); wrk's main
--                       thread sleeps for all of -d regardless, so the thread also creates the
--                       file BENCH_DONE and the caller then sends wrk SIGINT (wrk prints and exits)
-- done() prints one JSON line prefixed "BENCH_RESULT " with counts and latency percentiles.

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local body = slurp(os.getenv("BENCH_BODY"))
local uid_needle = '"uid":"' .. os.getenv("BENCH_UID") .. '"'
local uid_needle_spaced = '"uid": "' .. os.getenv("BENCH_UID") .. '"'
local patch_file = os.getenv("BENCH_PATCH") or ""
local patch_needle = nil
if patch_file ~= "" then
  patch_needle = '"patch":"' .. slurp(patch_file) .. '"'
end
local sample_prefix = os.getenv("BENCH_SAMPLE") or ""
local sample_every = tonumber(os.getenv("BENCH_SAMPLE_EVERY") or "500")
local sample_max = tonumber(os.getenv("BENCH_SAMPLE_MAX") or "40")
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local done_file = os.getenv("BENCH_DONE") or ""

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

local vary = os.getenv("BENCH_VARY") or ""
local PLACEHOLDER = "BENCHVARY000000"
local request_head, request_tail = nil, nil
if vary ~= "" then
  assert(body:find(PLACEHOLDER, 1, true), "BENCH_VARY needs the placeholder " .. PLACEHOLDER .. " in the body")
end

-- The whole request (head and body) is formatted once, around the placeholder (at the first
-- request: wrk sets wrk.host after the script is loaded); every request is then one
-- concatenation (a value has the placeholder's length, so Content-Length holds).
local function split_request()
  local whole = wrk.format(nil, nil, nil, body)
  local a, b = whole:find(PLACEHOLDER, 1, true)
  request_head, request_tail = whole:sub(1, a - 1), whole:sub(b + 1)
end
local sent = 0
local vary_base = tonumber(os.getenv("BENCH_VARY_BASE") or "0")  -- distinct values across wrk runs
local waiting = {}  -- uid mode: uids sent and not answered yet

if vary ~= "" then
  function request()
    sent = sent + 1
    local value = string.format("v%014d", vary_base + sent)  -- as long as the placeholder: a fixed body length
    if vary == "uid" then
      waiting[value] = true
    end
    if request_head == nil then
      split_request()
    end
    return request_head .. value .. request_tail
  end
end

local function uid_ok(resp)
  if vary ~= "uid" then
    return resp:find(uid_needle, 1, true) or resp:find(uid_needle_spaced, 1, true)
  end
  local uid = resp:match('"uid":%s*"([^"]*)"')
  if uid ~= nil and waiting[uid] then
    waiting[uid] = nil
    return true
  end
  return false
end

-- main state: give each thread an id and remember it, to add the counts up in done()
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- thread state
responses, ok, bad_status, bad_body, sampled = 0, 0, 0, 0, 0
local sample_file = nil
local stopped = false

function init(args)
  if sample_prefix ~= "" then
    sample_file = assert(io.open(sample_prefix .. "." .. tostring(id), "w"))
  end
end

function response(status, headers, resp)
  responses = responses + 1
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif patch_needle ~= nil then
    if resp:find(patch_needle, 1, true) and uid_ok(resp) then
      ok = ok + 1
    else
      bad_body = bad_body + 1
    end
  elseif uid_ok(resp) and resp:find('"patch"', 1, true) then
    ok = ok + 1
  else
    bad_body = bad_body + 1
  end
  if sample_file ~= nil and sampled < sample_max and responses % sample_every == 1 then
    sampled = sampled + 1
    sample_file:write(resp:gsub("\n", " "), "\n")
    sample_file:flush()
  end
  if limit > 0 and responses >= limit and not stopped then
    stopped = true
    wrk.thread:stop()
    if done_file ~= "" then
      local f = io.open(done_file, "w")
      if f then f:close() end
    end
  end
end

function done(summary, latency, requests)
  local total = {responses = 0, ok = 0, bad_status = 0, bad_body = 0, sampled = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(total) do
      total[key] = total[key] + (thread:get(key) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"responses":%d,"ok":%d,"bad_status":%d,"bad_body":%d,' ..
    '"sampled":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, total.responses, total.ok, total.bad_status, total.bad_body,
    total.sampled, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
