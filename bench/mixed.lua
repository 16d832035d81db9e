-- wrk: a mixed profile. Each wrk thread sends BENCH_MIX="get,refresh,login" percent
-- (default 90,8,2; decimals allowed) of GET /, refreshes and logins, spread evenly
-- over its requests. GET / uses BENCH_TOKEN; refreshes rotate a session pool as in
-- refresh.lua; logins use BENCH_USERS/BENCH_PASSWORD as in login.lua. Token pairs from
-- logins also join the pool (they are new sessions). A refresh with the queue empty is
-- sent as a GET / instead and counted as `starved`.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local pool = dofile(dir .. "pool.lua")

function setup(thread) pool.setup(thread) end

local token = os.getenv("BENCH_TOKEN")
local password = os.getenv("BENCH_PASSWORD")
local users = {}
for name in (os.getenv("BENCH_USERS") or ""):gmatch("%S+") do table.insert(users, name) end
assert(token and password and #users > 0, "mixed.lua: set BENCH_TOKEN, BENCH_USERS, BENCH_PASSWORD")

local mix = {}
for p in (os.getenv("BENCH_MIX") or "90,8,2"):gmatch("[%d.]+") do table.insert(mix, tonumber(p)) end
assert(#mix == 3 and math.abs(mix[1] + mix[2] + mix[3] - 100) < 1e-9,
    "BENCH_MIX must be three percentages adding up to 100")
-- Logins and refreshes are spread evenly: each request adds its share to a credit, and
-- a kind whose credit reaches 1 goes next (login first).
local login_share, refresh_share = mix[3] / 100, mix[2] / 100
local login_credit, refresh_credit = 0, 0

local json = { ["Content-Type"] = "application/json" }
local get_req

function init(args)
    -- Built here, not at load time: wrk adds the Host header to wrk.headers just
    -- before init, and wrk.format copies it from there (no Host: nginx answers 400).
    get_req = wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. token })
    queue = pool.load()
    starved, unparsed, gets, refreshes, logins = 0, 0, 0, 0, 0
    -- Threads start at different points of the schedule.
    login_credit = (id or 0) * 0.37 % 1
    refresh_credit = (id or 0) * 0.61 % 1
end

function request()
    login_credit = login_credit + login_share
    refresh_credit = refresh_credit + refresh_share
    if login_credit >= 1 then
        login_credit = login_credit - 1
        logins = logins + 1
        local name = users[logins % #users + 1]
        return wrk.format("POST", "/auth/login", json,
            '{"username":"' .. name .. '","password":"' .. password .. '"}')
    elseif refresh_credit >= 1 then
        refresh_credit = refresh_credit - 1
        local t = pool.pop(queue)
        if t then
            refreshes = refreshes + 1
            return wrk.format("POST", "/auth/refresh-token", json, '{"refreshToken":"' .. t .. '"}')
        end
        starved = starved + 1
    end
    gets = gets + 1
    return get_req
end

function response(status, hdrs, body)
    pool.note(status, body)
    local t = pool.refresh_token(body)
    if t then pool.push(queue, t) end
end

function done(summary, latency, requests)
    pool.report("BENCH mixed", { "gets", "refreshes", "logins", "starved" })
end
