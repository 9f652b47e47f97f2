-- GET / with a Cookie header taken in turn from a file of seeded cookies
-- (one "name=value" a line, the path given after "--" on wrk's command line).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local requests = {}
local index = 0

init = function(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      requests[#requests + 1] = wrk.format("GET", "/", { Cookie = line })
    end
  end
  if #requests == 0 then error("no cookies in " .. args[1]) end
end

request = function()
  index = index % #requests + 1
  return requests[index]
end
