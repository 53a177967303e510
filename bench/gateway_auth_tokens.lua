-- gateway_auth_tokens.lua: wrk 4.1 script of bench/gateway_auth_bench.sh. Sends GET <url path>
-- with "Authorization: Bearer <token>", taking the tokens of TOKENS_FILE (one a line) in turn,
-- one per request, across all of wrk's connections (wrk -t1: one Lua state, one counter).
--   wrk -t1 -c32 -d8s -s bench/gateway_auth_tokens.lua URL -- TOKENS_FILE
-- wrk 4.1 calls init(args) once per thread with the arguments after "--", and, because a
-- global request() is defined, calls it for every request it writes (otherwise it would send
-- one pre-formatted request for ever). Every request is formatted once here, in init, so
-- request() only picks the next string: the client's cost per request is the same whatever
-- the tokens, and the same for the gateway with auth on and the one with auth off.
local reqs, n, i = {}, 0, 0

function init(args)
   local path = args[1]
   if path == nil then
      error("gateway_auth_tokens.lua: usage: wrk ... -s gateway_auth_tokens.lua URL -- TOKENS_FILE")
   end
   local f = assert(io.open(path, "r"))
   for tok in f:lines() do
      if #tok > 0 then
         n = n + 1
         reqs[n] = wrk.format("GET", wrk.path, { ["Host"] = wrk.headers["Host"],
                                                 ["Authorization"] = "Bearer " .. tok })
      end
   end
   f:close()
   if n == 0 then
      error("gateway_auth_tokens.lua: no tokens in " .. path)
   end
end

function request()
   i = i + 1
   if i > n then
      i = 1
   end
   return reqs[i]
end
