-- wrk script of `make bench` (bench/bench.py): one USSD hop kind, Africa's Talking form, unique sessions.
--
-- wrk -t2 -cN -dS -s bench/hops.lua URL -- KIND PATH PHONE TOKEN RUN SLOTS MODE REJECT STEPS PREFIX [THINK]
--   KIND    dial | nav | balance
--   PATH    the USSD callback path of the server under test
--   PHONE   the caller (+221770000001, a known customer)
--   TOKEN   the gateway token, sent as X-Gateway-Token ("-" for none)
--   RUN     prefix of every session id, unique per phase so phases never share a session
--   SLOTS   sessions per wrk thread for nav/balance (brought to their screen beforehand by bench.py's seed)
--   MODE    load | seed  (seed: play each slot's dial and PREFIX once, then stop the thread; bench.py uses
--           it for the Redis bytes of SLOTS fresh dials)
--   REJECT  "|"-separated texts that make a 200 answer count as bad (busy, error screens); "-" for none
--   STEPS   the two inputs a nav/balance hop alternates, comma-separated ("98,99", "1,0")
--   PREFIX  "*"-joined inputs that bring a fresh session where the steps apply ("1*1"), "-" for none
--   THINK   milliseconds a connection pauses before each hop, as a person reads the screen (0 or absent:
--           none, every connection hops again as soon as it is answered). The pause of each hop is drawn
--           between 0.5x and 1.5x THINK, so the connections do not hop in step.
--
-- dial:    every request is a new session, text="" (the dial of a known customer).
-- nav:     sessions sitting on a paged screen; each hop appends the next page or the way back.
-- balance: sessions sitting on the main menu; each hop appends "1" (balance, a back-end call) or
--          "0" (back to the main menu): every other request is the balance.
-- Seeding (MODE=seed) plays the dial and the PREFIX of every slot's session, one hop at a time.
-- The text is cumulative, as the gateway sends it ("98*0*98"). A slot's session is retired after
-- MAX_HOPS hops (real sessions are short): it then replays dial and PREFIX on a fresh session.
-- Slots are used round robin. bench.py runs nav and balance with one connection per wrk thread (wrk's
-- script has state per thread, none per connection): a thread's next hop leaves only once its last one
-- is answered, so no two hops of a session are ever in flight, as with a gateway, which waits for each
-- screen. (With several connections per thread, a slow balance hop let its session's next hop leave on
-- another connection: the two then reached the server side by side, sometimes in the wrong order.) A hop
-- sent while an earlier one of its thread is unanswered (its connection was lost) counts as an overlap.
-- (Keeping sessions per connection instead, a few threads for many connections, is not possible here: wrk
-- names no connection to request() or response(), and an answer names no session; see bench.py wrk_threads.)

local MAX_HOPS = 60
local SEED_BLOCK = 64  -- 2x the seed's connections per thread (bench.py seeds with at most 64 in all)
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

local kind, path, phone, run, slots, mode
local rejects = {}
local counter, responses = 0, 0
bad = 0  -- globals: done() reads them from every thread
overlap = 0
first_bad = nil
local hops = {}
-- wrk (script_verify_request) calls request() once on thread 0, after init() and before any thread runs, to
-- check the request it builds; that request is never sent, so it must not use up a hop of a session (it had
-- left thread 0's first session a hop behind: its next hop then skipped one input).
local verifying = false
local steps, prefix = {}, {}

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
   for step in string.gmatch(args[9] or "", "[^,]+") do table.insert(steps, step) end
   if args[10] and args[10] ~= "-" then
      for step in string.gmatch(args[10], "[^*]+") do table.insert(prefix, step) end
   end
   verifying = id == 0
   local think = tonumber(args[11] or "0") or 0
   if think > 0 then
      math.randomseed(os.time() + id)
      -- wrk looks for a global delay() after init: defined only when there is a pause to make
      function delay()
         return math.floor(think * (0.5 + math.random()))
      end
   end
end

-- The text of hop ``hop`` (0 = the dial) of a session: the prefix, then the steps alternately.
local function text_of(hop)
   local parts = {}
   for i = 1, hop do
      if i <= #prefix then
         parts[i] = prefix[i]
      else
         parts[i] = steps[(i - #prefix - 1) % #steps + 1]
      end
   end
   return table.concat(parts, "*")
end

local function form(session, text)
   return "sessionId=" .. session .. "&serviceCode=%2A123%23&phoneNumber=" .. phone ..
      "&networkCode=99999&text=" .. text:gsub("%*", "%%2A")
end

local function slot_session(slot, generation)
   return run .. "-" .. id .. "-" .. slot .. "-" .. generation
end

function request()
   if verifying then
      verifying = false
      return wrk.format(nil, path, nil, form(run .. "-verify", ""))
   end
   counter = counter + 1
   if kind == "dial" then
      return wrk.format(nil, path, nil, form(run .. "-" .. id .. "-" .. counter, ""))
   end
   if mode == "seed" then
      -- Blocks of SEED_BLOCK slots, one after the other; inside a block, hop h of every slot before
      -- hop h+1 of any (no two hops of a session in flight). A seed cut short leaves whole blocks
      -- seeded, and the load then uses only those (bench.py passes their count as SLOTS).
      local block = math.min(SEED_BLOCK, slots)
      local k, per_block = counter - 1, block * (#prefix + 1)
      local i = k % per_block
      local slot, hop = math.floor(k / per_block) * block + i % block, math.floor(i / block)
      if slot >= slots then
         -- past the last slot (sent while the thread stops): a dial of a session no load hop uses,
         -- never a second copy of a seeded hop (it could land on the session as a new input)
         return wrk.format(nil, path, nil, form(slot_session(slot, 0) .. "x", ""))
      end
      return wrk.format(nil, path, nil, form(slot_session(slot, 0), text_of(hop)))
   end
   if counter - 1 > responses then
      overlap = overlap + 1
   end
   local slot = counter % slots
   -- generation 0 starts after the seed's hops; later generations replay the dial and the prefix
   local n = hops[slot] or #prefix
   n = n + 1
   hops[slot] = n
   local generation, hop = math.floor(n / MAX_HOPS), n % MAX_HOPS
   return wrk.format(nil, path, nil, form(slot_session(slot, generation), text_of(hop)))
end

function response(status, headers, body)
   responses = responses + 1
   if status == 200 then
      local wrong = body:sub(1, 4) ~= "CON "
      for _, text in ipairs(rejects) do
         wrong = wrong or body:find(text, 1, true) ~= nil
      end
      if wrong then
         bad = bad + 1
         first_bad = first_bad or body:sub(1, 60):gsub("[^%w%p ]", " ")
      end
   end
   local block = math.min(SEED_BLOCK, slots)
   if mode == "seed" and responses >= math.ceil(slots / block) * block * (#prefix + 1) then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local total_bad, total_overlap = 0, 0
   for _, thread in ipairs(threads) do
      total_bad = total_bad + (thread:get("bad") or 0)
      total_overlap = total_overlap + (thread:get("overlap") or 0)
      if thread:get("first_bad") then io.write("BENCHBAD " .. thread:get("first_bad") .. "\n") end
   end
   local e = summary.errors
   io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, ' ..
      '"p99_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "bad": %d, ' ..
      '"overlap": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
      latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout, total_bad, total_overlap))
end
