-- POST /v1/disputes with a new applicant and respondent each time: valid resident ID numbers
-- (GB 11643 check digit), varied names, categories and towns, so the early-warning rules see
-- what a real window sees rather than one person filing thousands of cases.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local WEIGHTS = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local CHECK = {"1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2"}
local SURNAMES = {"王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "马", "罗"}
local GIVEN = {"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "华", "建国"}
local CATEGORIES = {"neighbour", "marriage_family", "debt", "contract", "labour", "property_management", "land_forest",
  "damages", "consumer", "traffic_accident", "housing_homestead", "medical"}
local TOWNS = {"330681001", "330681002", "330681101", "330681102", "330681103", "330681104", "330681105", "330681106"}

local function resident_id(serial)
  -- Born 1990 onwards: ID numbers must name a place that existed at the birth date (诸暨市: 1989).
  local born = os.time({year = 1990, month = 1, day = 1, hour = 12}) + (serial % 9000) * 86400
  local first = "330681" .. os.date("%Y%m%d", born) .. string.format("%03d", math.floor(serial / 9000) % 1000)
  local sum = 0
  for k = 1, 17 do
    sum = sum + tonumber(first:sub(k, k)) * WEIGHTS[k]
  end
  return first .. CHECK[sum % 11 + 1]
end

local function party(role, serial)
  return string.format(
    '{"role": "%s", "kind": "person", "name": "%s%s", "id_type": "resident_id", "id_number": "%s", ' ..
    '"phone": "139%08d", "address": "浙江省诸暨市"}',
    role, SURNAMES[serial % #SURNAMES + 1], GIVEN[math.floor(serial / 7) % #GIVEN + 1],
    resident_id(serial), serial % 100000000)
end

local n, base
function init(args)
  n = 0
  base = (tonumber(os.getenv("BENCH_SEED")) or 0) * 1000000 + index * 100000
  wrk.headers[os.getenv("BENCH_AUTH_HEADER")] = os.getenv("BENCH_AUTH_VALUE")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local serial = base + n
  local body = string.format(
    '{"category": "%s", "description": "双方因%d号合同履行发生争执, 申请调解。", "channel": "window", ' ..
    '"region_code": "%s%03d", "amount_in_dispute": "%d.00", "people_involved": 2, "parties": [%s, %s]}',
    CATEGORIES[serial % #CATEGORIES + 1], serial, TOWNS[serial % #TOWNS + 1], 200 + serial % 20,
    1000 + serial % 50000, party("applicant", 2 * serial), party("respondent", 2 * serial + 1))
  return wrk.format("POST", "/v1/disputes", nil, body)
end
