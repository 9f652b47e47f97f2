-- GET / without a cookie; once the number of requests given after "--" on
-- wrk's command line has been sent, says "FLOOD_DONE" so that the harness
-- ends wrk with SIGINT (wrk otherwise runs its whole duration, and its
-- report still comes). The few requests sent before the signal lands are
-- counted in the report like the others. Counting sent requests, not
-- answers, keeps wrk from parsing every answer in Lua.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local limit
local sent = 0
local plain

init = function(args)
  limit = tonumber(args[1])
  plain = wrk.format("GET", "/")
end

request = function()
  sent = sent + 1
  if sent == limit then
    io.write("FLOOD_DONE\n")
    io.flush()
  end
  return plain
end
