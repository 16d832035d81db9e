-- wrk: the soak's load (SOAK=1 bash bench/run.sh, bench/soak.sh). As in mixed.lua, each
-- wrk thread sends BENCH_MIX="get,refresh,login" percent of GET /, refreshes and logins,
-- spread evenly over its requests. What differs:
--
--   * Only the sessions of the pool (BENCH_SESSIONS, see pool.lua) are refreshed, so they
--     stay alive however long the run. A login's new session is never used again: it
--     must expire after REFRESH_TOKEN_TTL, which is what the soak watches Redis for.
--     Both kinds of answer are the same token pair, so an answer is told apart by the
--     session id (`sid`) in its refresh token's payload: pool sessions keep theirs.
--   * GET / sends the access token of the latest rotation (BENCH_TOKEN at first), so it
--     does not expire during a run longer than ACCESS_TOKEN_TTL.
--   * Every answer's status is counted. done() prints one line
--     `BENCH soak gets=.. refreshes=.. logins=.. ... status_200=.. status_403=..`.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local pool = dofile(dir .. "pool.lua")

function setup(thread) pool.setup(thread) end

local token = os.getenv("BENCH_TOKEN")
local password = os.getenv("BENCH_PASSWORD")
local users = {}
for name in (os.getenv("BENCH_USERS") or ""):gmatch("%S+") do table.insert(users, name) end
assert(token and password and #users > 0, "soak.lua: set BENCH_TOKEN, BENCH_USERS, BENCH_PASSWORD")

local mix = {}
for p in (os.getenv("BENCH_MIX") or "90,8,2"):gmatch("[%d.]+") do table.insert(mix, tonumber(p)) end
assert(#mix == 3 and math.abs(mix[1] + mix[2] + mix[3] - 100) < 1e-9,
    "BENCH_MIX must be three percentages adding up to 100")
local login_share, refresh_share = mix[3] / 100, mix[2] / 100
local login_credit, refresh_credit = 0, 0

-- base64url (no padding) to bytes; nil on a character outside the alphabet.
local b64 = {}
do
    local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i = 1, #alphabet do b64[alphabet:byte(i)] = i - 1 end
end
local function b64url_decode(s)
    local out, acc, nbits = {}, 0, 0
    for i = 1, #s do
        local v = b64[s:byte(i)]
        if not v then return nil end
        acc = acc * 64 + v
        nbits = nbits + 6
        if nbits >= 8 then
            nbits = nbits - 8
            local byte = math.floor(acc / 2 ^ nbits)
            out[#out + 1] = string.char(byte)
            acc = acc - byte * 2 ^ nbits
        end
    end
    return table.concat(out)
end

-- The session id in a JWT's payload, or nil.
local function sid_of(jwt)
    local payload = jwt:match("^[^.]+%.([^.]+)%.")
    local json = payload and b64url_decode(payload)
    return json and json:match('"sid"%s*:%s*"([^"]+)"')
end

local json = { ["Content-Type"] = "application/json" }
local get_req

function init(args)
    -- Built here, not at load time: wrk adds the Host header to wrk.headers just
    -- before init, and wrk.format copies it from there (no Host: nginx answers 400).
    get_req = wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. token })
    queue = pool.load()
    pool_sids = {}
    for i = queue.head, queue.tail do
        local sid = sid_of(queue[i])
        assert(sid, "soak.lua: no sid in a refresh token of " .. os.getenv("BENCH_SESSIONS"))
        pool_sids[sid] = true
    end
    pool_start = pool.size(queue)
    pool_end = pool_start
    gets, refreshes, logins, starved = 0, 0, 0, 0
    refresh_ok, login_ok, unparsed = 0, 0, 0
    statuses = {}
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
            pool_end = pool.size(queue)
            return wrk.format("POST", "/auth/refresh-token", json, '{"refreshToken":"' .. t .. '"}')
        end
        starved = starved + 1
    end
    gets = gets + 1
    return get_req
end

function response(status, hdrs, body)
    statuses[status] = (statuses[status] or 0) + 1
    pool.note(status, body)
    if status ~= 200 then return end
    local t = pool.refresh_token(body)
    if not t then return end          -- GET / answers
    local sid = sid_of(t)
    if sid and pool_sids[sid] then
        refresh_ok = refresh_ok + 1
        pool.push(queue, t)
        pool_end = pool.size(queue)
        local access = body:match('"accessToken"%s*:%s*"([^"]+)"')
        if access then
            get_req = wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. access })
        end
    elseif sid then
        login_ok = login_ok + 1       -- a new session, left to expire
    else
        unparsed = unparsed + 1
    end
end

function done(summary, latency, requests)
    pool.report("BENCH soak", { "gets", "refreshes", "logins", "starved", "refresh_ok", "login_ok",
        "unparsed", "pool_start", "pool_end" })
    local total = {}
    for _, t in ipairs(pool.threads or {}) do
        for status, n in pairs(t:get("statuses") or {}) do
            total[status] = (total[status] or 0) + n
        end
    end
    local keys = {}
    for status in pairs(total) do table.insert(keys, status) end
    table.sort(keys)
    local parts = { "BENCH-STATUS" }
    for _, status in ipairs(keys) do table.insert(parts, "status_" .. status .. "=" .. total[status]) end
    io.write(table.concat(parts, " ") .. "\n")
end
