-- GET / without a cookie: every request to a session server starts a session.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
