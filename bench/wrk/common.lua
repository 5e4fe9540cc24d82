-- Lines of a file named by an environment variable, the share of this thread (every n-th line).
local M = {}

function M.lines(variable, thread_index, threads)
  local out, n = {}, 0
  for line in io.lines(os.getenv(variable)) do
    if n % threads == thread_index then
      out[#out + 1] = line
    end
    n = n + 1
  end
  return out
end

return M
