-- wrk: POST /auth/refresh-token rotating real sessions (see pool.lua). Every 200 answer
-- carries the session's next refresh token, which goes back into this thread's queue;
-- the token just sent is spent.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local pool = dofile(dir .. "pool.lua")

function setup(thread) pool.setup(thread) end

local headers = { ["Content-Type"] = "application/json" }

function init(args)
    queue = pool.load()
    starved, unparsed = 0, 0
end

function request()
    local token = pool.pop(queue)
    if not token then
        -- Cannot happen with more tokens than connections unless answers were lost;
        -- the 403 this draws is counted as an error by wrk.
        starved = starved + 1
        token = "starved"
    end
    return wrk.format("POST", "/auth/refresh-token", headers, '{"refreshToken":"' .. token .. '"}')
end

function response(status, hdrs, body)
    pool.note(status, body)
    local token = pool.refresh_token(body)
    if token then pool.push(queue, token) else unparsed = unparsed + 1 end
end

function done(summary, latency, requests)
    pool.report("BENCH refresh", { "starved", "unparsed" })
end
