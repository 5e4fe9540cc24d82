-- POST /v1/disputes/{id}/actions/{BENCH_ACTION} with If-Match on cases read from BENCH_IDS (lines
-- "id version"), each case once: every thread takes its own share, so no two requests race for one.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local ids, i, action, auth_header, auth_value
function init(args)
  ids = common.lines("BENCH_IDS", index, tonumber(os.getenv("BENCH_THREADS")))
  i = 0
  action = os.getenv("BENCH_ACTION")
  auth_header, auth_value = os.getenv("BENCH_AUTH_HEADER"), os.getenv("BENCH_AUTH_VALUE")
end

function request()
  i = i + 1  -- past the end the server answers 404: the pool was too small, and the report says so
  local id, version = (ids[i] or "00000000-0000-0000-0000-000000000000 1"):match("(%S+) (%d+)")
  -- Headers given to wrk.format replace wrk.headers, so every one is named here.
  return wrk.format("POST", "/v1/disputes/" .. id .. "/actions/" .. action, {
    [auth_header] = auth_value,
    ["Content-Type"] = "application/json",
    ["If-Match"] = '"' .. version .. '"',
  }, '{"note": null}')
end
