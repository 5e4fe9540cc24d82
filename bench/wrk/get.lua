-- GET paths read from BENCH_PATHS, each thread walking its own share in turn.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local paths, i
function init(args)
  paths = common.lines("BENCH_PATHS", index, tonumber(os.getenv("BENCH_THREADS")))
  i = 0
  wrk.headers[os.getenv("BENCH_AUTH_HEADER")] = os.getenv("BENCH_AUTH_VALUE")
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
