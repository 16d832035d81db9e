-- wrk: GET of the URL's path (/, or /app/ for the gated profiles) with a valid access
-- token (BENCH_TOKEN). No request() function, so wrk builds the request once and every
-- connection resends it: the cheapest client side.
local token = os.getenv("BENCH_TOKEN")
assert(token and token ~= "", "get.lua: set BENCH_TOKEN to an access token")
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. token
