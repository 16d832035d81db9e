-- wrk: POST /auth/login with correct credentials. BENCH_USERS is a space-separated list
-- of registered usernames (taken in turn), BENCH_PASSWORD their common password. Every
-- login costs one bcrypt at the server's BCRYPT_COST and starts a new session.
local users = {}
for name in (os.getenv("BENCH_USERS") or ""):gmatch("%S+") do table.insert(users, name) end
local password = os.getenv("BENCH_PASSWORD")
assert(#users > 0 and password, "login.lua: set BENCH_USERS and BENCH_PASSWORD")

local headers = { ["Content-Type"] = "application/json" }
local bodies = {}
for i, name in ipairs(users) do
    bodies[i] = '{"username":"' .. name .. '","password":"' .. password .. '"}'
end
local n = 0

function request()
    n = n + 1
    return wrk.format("POST", "/auth/login", headers, bodies[n % #bodies + 1])
end
