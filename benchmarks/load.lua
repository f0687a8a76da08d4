-- The requests of one phase of benchmarks/load.py, for wrk (Debian's `wrk`, LuaJIT):
--   wrk -t1 -c8 -d10s -H 'Authorization: ...' -s benchmarks/load.lua <node's FHIR base>/ -- <phase> <data dir> <seed>
-- The data dir holds what load.py seeded (ids.txt, items.txt, patients.txt, one id or identifier
-- value a line) and the bodies to post (create.json, transaction.json), in which each @UUID@
-- becomes a fresh UUID, so that every create carries a business identifier of its own.
-- The phase "mixed" (benchmarks/soak.py's) picks each request's kind at random by MIX's weights.
-- `done` prints the figures as one JSON line starting with LOAD, for load.py to read.

local ITEM_SYSTEM = "https://fhir.nhs.uk/Id/prescription-order-item-number"
-- Mostly reads and searches, as a medicines record is used; a transaction writes 10 requests.
local MIX = { { "read", 35 }, { "identifier", 20 }, { "patient", 15 }, { "create", 15 },
  { "conditional", 10 }, { "transaction", 5 } }
local phase, data, bodies, conditionals = nil, {}, {}, 0
local threads = 0

local function lines(path)
  local found = {}
  for line in io.lines(path) do
    if line ~= "" then found[#found + 1] = line end
  end
  return found
end

local function read(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local function pick(list)
  return list[math.random(#list)]
end

local function uuid()
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", r(0, 0xffff), r(0, 0xffff),
    r(0, 0xffff), r(0, 0xfff), 0x8000 + r(0, 0x3fff), r(0, 0xffff), r(0, 0xffff), r(0, 0xffff))
end

local function fresh(template)
  return (template:gsub("@UUID@", uuid))
end

local function with(extra)
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  for name, value in pairs(extra) do headers[name] = value end
  return headers
end

function setup(thread)
  threads = threads + 1
  thread:set("thread_index", threads)
end

function init(args)
  phase = args[1]
  local dir = args[2]
  math.randomseed(tonumber(args[3]) + 7919 * (thread_index or 0))
  if phase == "trivial" then return end
  for _, name in ipairs({ "ids", "items", "patients" }) do data[name] = lines(dir .. "/" .. name .. ".txt") end
  bodies.create = read(dir .. "/create.json")
  bodies.transaction = read(dir .. "/transaction.json")
end

local base = nil
local build = {}  -- each phase's request, by its name

function build.floor()
  return wrk.format("GET", base .. ".well-known/smart-configuration")
end

function build.create()
  return wrk.format("POST", base .. "MedicationRequest", nil, fresh(bodies.create))
end

function build.read()
  return wrk.format("GET", base .. "MedicationRequest/" .. pick(data.ids))
end

function build.identifier()
  return wrk.format("GET", base .. "MedicationRequest?identifier=" .. ITEM_SYSTEM .. "%7C" .. pick(data.items))
end

function build.patient()
  return wrk.format("GET", base .. "MedicationRequest?patient=" .. pick(data.patients) .. "&status=active")
end

function build.conditional()
  -- Every other one names a stored request's identifier (200, nothing written); the others
  -- are new (201, searched for, then created).
  conditionals = conditionals + 1
  local item = (conditionals % 2 == 0) and pick(data.items) or uuid()
  local body = bodies.create:gsub("@UUID@", item)
  local headers = with({ ["If-None-Exist"] = "identifier=" .. ITEM_SYSTEM .. "|" .. item })
  return wrk.format("POST", base .. "MedicationRequest", headers, body)
end

function build.transaction()
  return wrk.format("POST", base, nil, fresh(bodies.transaction))
end

local weights = 0
for _, kind in ipairs(MIX) do weights = weights + kind[2] end

function build.mixed()
  local roll = math.random(weights)
  for _, kind in ipairs(MIX) do
    roll = roll - kind[2]
    if roll <= 0 then return build[kind[1]]() end
  end
end

function request()
  base = base or wrk.path
  local make = build[phase]
  if make then return make() end
  return wrk.format("GET", base)  -- the trivial view
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LOAD {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "errors": %d, '
      .. '"error_kinds": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    e.connect + e.read + e.write + e.status + e.timeout, e.connect, e.read, e.write, e.status, e.timeout))
end
