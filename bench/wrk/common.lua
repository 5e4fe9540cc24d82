-- Lines of a file named by an environment variable, the share of this thread (every n-th line).
-- A thread whose share would be empty (fewer lines than threads) takes every line: without a path
-- of its own, wrk would send the URL's own path ("/") and time that instead.
local M = {}

function M.lines(variable, thread_index, threads)
  local all, out = {}, {}
  for line in io.lines(os.getenv(variable)) do
    if #all % threads == thread_index then
      out[#out + 1] = line
    end
    all[#all + 1] = line
  end
  if #all == 0 then
    error("no lines in " .. os.getenv(variable))
  end
  if #out == 0 then
    return all
  end
  return out
end

return M
