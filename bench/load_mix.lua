-- wrk script of the load and fault drills: a template, @NAME@ filled in by
-- bench/load_rig.py (mix_script). One connection per thread; each answer is counted by the
-- kind of its request and its status, its latency kept, and HR updates tracked by id.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } idsvc_ts;
int clock_gettime(int clk, idsvc_ts *ts);
]]
local ts = ffi.new("idsvc_ts")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local ROTA = {@ROTA@}
local PHASE = [==[@PHASE@]==]
local OUT = [==[@OUT@]==]
local JWT_BODY = [==[@JWT_BODY@]==]
local QR_BODY = [==[@QR_BODY@]==]
local PAYROLL_BODY = [==[@PAYROLL_BODY@]==]
local PAYROLL_ACTIVE = @PAYROLL_ACTIVE@
local HR_BODY = [==[@HR_BODY@]==]
local STATUS_PATH = [==[@STATUS_PATH@]==]
local BARE_PATH = [==[@BARE_PATH@]==]
local VERIFIER = "Bearer " .. [==[@VERIFIER@]==]
local BANK = "Bearer " .. [==[@BANK@]==]
local HR = "Bearer " .. [==[@HR@]==]

local threads = {}
local next_tid = 1
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

-- per thread (each thread has its own Lua state)
n = 0
hr_seq = 0
counts = {}
lat = {}
hr_ok = {}
hr_bad = {}
pending = {}  -- HR ids sent and not (yet) answered 2xx
local retry_queue = {}
retried = 0
local kind, started, awaiting, hr_current
local jwks_etag, status_etag = '"none"', 'W/"none"'
local fixed = {}

local primed
function init(args)
  -- wrk calls the first thread's request() once before the run, to check the script: that
  -- call must not count (nor use up an HR id).
  primed = (tid ~= 1)
  local json = {["Content-Type"] = "application/json"}
  fixed.verify_jwt = wrk.format("POST", "/v1/verifications", json, JWT_BODY)
  fixed.verify_qr = wrk.format("POST", "/v1/verifications",
    {["Content-Type"] = "application/json", ["Authorization"] = VERIFIER}, QR_BODY)
  fixed.payroll = wrk.format("POST", "/v1/payroll/checks",
    {["Content-Type"] = "application/json", ["Authorization"] = BANK}, PAYROLL_BODY)
  fixed.jwks = wrk.format("GET", "/.well-known/jwks.json")
  fixed.status = wrk.format("GET", STATUS_PATH)
  fixed.challenge = wrk.format("POST", "/v1/card-challenges")
  fixed.bare = wrk.format("POST", BARE_PATH, json, JWT_BODY)
end

local function hr_request(id)
  hr_current = id
  pending[id] = true
  local body = HR_BODY:gsub("@ID@", id)
  return wrk.format("POST", "/v1/hr/records", {
    ["Content-Type"] = "application/json", ["Authorization"] = HR, ["Idempotency-Key"] = id,
  }, body)
end

function request()
  if not primed then
    primed = true
    return fixed.jwks
  end
  if awaiting then
    count(kind, "lost")  -- never answered: the connection died (a killed worker)
    if kind == "hr" then table.insert(retry_queue, hr_current) end
  end
  awaiting = true
  started = now_us()
  n = n + 1
  kind = ROTA[(n + tid * 7) % #ROTA + 1]
  if kind == "hr" and #retry_queue > 0 then
    -- the HR system sends an update again, same Idempotency-Key, at its next turn
    retried = retried + 1
    return hr_request(table.remove(retry_queue, 1))
  elseif kind == "hr" then
    hr_seq = hr_seq + 1
    return hr_request(string.format("LA-LD%s%d-%06d", PHASE, tid, hr_seq))
  elseif kind == "jwks_inm" then
    return wrk.format("GET", "/.well-known/jwks.json", {["If-None-Match"] = jwks_etag})
  elseif kind == "status_inm" then
    return wrk.format("GET", STATUS_PATH, {["If-None-Match"] = status_etag})
  end
  return fixed[kind]
end

-- Flat tables only: wrk's thread:get crashes copying nested ones.
function count(k, s)
  local key = k .. "\t" .. s
  counts[key] = (counts[key] or 0) + 1
end

local function header(headers, name)
  return headers[name] or headers[name:lower()] or headers[name:upper()]
end

function response(status, headers, body)
  awaiting = false
  local key = tostring(status)
  if status == 200 and (kind == "verify_jwt" or kind == "verify_qr") then
    if not body:find('"valid":true', 1, true) then key = key .. "_invalid" end
  elseif status == 200 and kind == "payroll" then
    local _, active = body:gsub('"active_for_payroll":true', "")
    if active ~= PAYROLL_ACTIVE then key = key .. "_wrong" end
  elseif status == 200 and kind == "hr" then
    if body:find('"created":1', 1, true) then
      table.insert(hr_ok, hr_current)
      pending[hr_current] = nil
    else
      key = key .. "_rejected"
    end
  elseif status >= 500 then
    -- a fault must be a problem+json with Retry-After, never a bare 500
    local ctype = header(headers, "Content-Type") or ""
    if not (ctype:find("problem+json", 1, true) and header(headers, "Retry-After")) then
      key = key .. "_bare"
    end
    if kind == "hr" then
      table.insert(retry_queue, hr_current)
      table.insert(hr_bad, hr_current)
    end
  end
  if kind == "jwks" or kind == "jwks_inm" then
    jwks_etag = header(headers, "ETag") or jwks_etag
  elseif kind == "status" or kind == "status_inm" then
    status_etag = header(headers, "ETag") or status_etag
  end
  count(kind, key)
  lat[#lat + 1] = kind .. "\t" .. math.floor(now_us() - started)
end

function done(summary, latency, requests)
  local out = io.open(OUT, "w")
  local e = summary.errors
  out:write(string.format("summary\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", summary.requests,
    summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
  for _, t in ipairs(threads) do
    local tid = t:get("tid")
    out:write(string.format("thread\t%d\t%d\t%d\n", tid, t:get("hr_seq"), t:get("retried")))
    for key, c in pairs(t:get("counts")) do out:write(string.format("count\t%s\t%d\n", key, c)) end
    for _, line in ipairs(t:get("lat")) do out:write("lat\t", line, "\n") end
    for _, id in ipairs(t:get("hr_ok")) do out:write("hr_ok\t", id, "\n") end
    for _, id in ipairs(t:get("hr_bad")) do out:write("hr_5xx\t", id, "\n") end
    for id, _ in pairs(t:get("pending")) do out:write("hr_pending\t", id, "\n") end
  end
  out:close()
end
