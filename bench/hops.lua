-- wrk script of `make bench` (bench/bench.py): one USSD hop kind, Africa's Talking form, unique sessions.
--
-- wrk -t2 -cN -dS -s bench/hops.lua URL -- KIND PATH PHONE TOKEN RUN SLOTS MODE REJECT
--   KIND    dial | nav | balance
--   PATH    the USSD callback path of the server under test
--   PHONE   the caller (+221770000001, a known customer)
--   TOKEN   the gateway token, sent as X-Gateway-Token ("-" for none)
--   RUN     prefix of every session id, unique per phase so phases never share a session
--   SLOTS   sessions per wrk thread for nav/balance (dialled beforehand by MODE=seed)
--   MODE    load | seed  (seed: dial each slot's session once, then stop the thread)
--   REJECT  "|"-separated texts that make a 200 answer count as bad (busy, error screens); "-" for none
--
-- dial:    every request is a new session, text="" (the dial of a known customer).
-- nav:     sessions sitting on the main menu; each hop appends "98" (next page) or "0" (back).
-- balance: sessions sitting on the main menu; each hop appends "1" (balance, a back-end call) or
--          "0" (back to the main menu): every other request is the balance.
-- The text is cumulative, as the gateway sends it ("98*0*98"). A slot's session is retired after
-- MAX_HOPS hops (real sessions are short): its next request dials a fresh one (1 in MAX_HOPS).
-- Slots are used round robin; with SLOTS = 4x the thread's connections a session's previous hop
-- has long been answered when its next one leaves (a hop that finds it busy counts as bad).

local MAX_HOPS = 60
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

local kind, path, phone, run, slots, mode
local rejects = {}
local counter, responses = 0, 0
bad = 0  -- global: done() reads it from every thread
local hops, texts = {}, {}
local steps = { nav = { "98", "0" }, balance = { "1", "0" } }

function init(args)
   kind, path, phone = args[1], args[2], args[3]
   local token = args[4]
   run, slots, mode = args[5], tonumber(args[6]), args[7]
   if args[8] and args[8] ~= "-" then
      for text in string.gmatch(args[8], "[^|]+") do table.insert(rejects, text) end
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   if token ~= "-" then wrk.headers["X-Gateway-Token"] = token end
   phone = phone:gsub("%+", "%%2B")
end

local function form(session, text)
   return "sessionId=" .. session .. "&serviceCode=%2A123%23&phoneNumber=" .. phone ..
      "&networkCode=99999&text=" .. text:gsub("%*", "%%2A")
end

local function slot_session(slot, generation)
   return run .. "-" .. id .. "-" .. slot .. "-" .. generation
end

function request()
   counter = counter + 1
   if kind == "dial" then
      return wrk.format(nil, path, nil, form(run .. "-" .. id .. "-" .. counter, ""))
   end
   if mode == "seed" then
      return wrk.format(nil, path, nil, form(slot_session(counter - 1, 0), ""))
   end
   local slot = counter % slots
   -- hop 0 of generation 0 is the seed's dial; later generations open with their own dial
   local n = (hops[slot] or 0) + 1
   hops[slot] = n
   local generation, hop = math.floor(n / MAX_HOPS), n % MAX_HOPS
   local text = ""
   if hop > 0 then
      local step = steps[kind][(hop - 1) % 2 + 1]
      text = hop == 1 and step or texts[slot] .. "*" .. step
   end
   texts[slot] = text
   return wrk.format(nil, path, nil, form(slot_session(slot, generation), text))
end

function response(status, headers, body)
   responses = responses + 1
   if status == 200 then
      if body:sub(1, 4) ~= "CON " then
         bad = bad + 1
      else
         for _, text in ipairs(rejects) do
            if body:find(text, 1, true) then
               bad = bad + 1
               break
            end
         end
      end
   end
   if mode == "seed" and responses >= slots then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local total_bad = 0
   for _, thread in ipairs(threads) do total_bad = total_bad + (thread:get("bad") or 0) end
   local e = summary.errors
   io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, ' ..
      '"p99_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "bad": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
      latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout, total_bad))
end
