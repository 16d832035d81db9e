-- Shared by refresh.lua and mixed.lua: a per-thread FIFO of refresh tokens.
--
-- BENCH_SESSIONS names a file with one refresh token per line (a fresh session each);
-- thread k of BENCH_THREADS takes lines k+1, k+1+T, k+1+2T, ... A request pops a token,
-- its response pushes the new token that the rotation returned. With pipelining off
-- each connection has one request in flight, so the queue never runs dry as long as a
-- thread has more tokens than connections (64 per thread for 32 connections).
local M = {}

function M.setup(thread)
    M.threads = M.threads or {}
    table.insert(M.threads, thread)
    thread:set("id", #M.threads - 1)
end

function M.load()
    local path = os.getenv("BENCH_SESSIONS")
    assert(path, "set BENCH_SESSIONS to a file of refresh tokens")
    local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
    local q = { head = 1, tail = 0 }
    local i = 0
    for line in io.lines(path) do
        if line ~= "" then
            if i % nthreads == id then
                q.tail = q.tail + 1
                q[q.tail] = line
            end
            i = i + 1
        end
    end
    assert(q.tail > 0, "no refresh tokens for thread " .. tostring(id) .. " in " .. path)
    return q
end

function M.pop(q)
    if q.head > q.tail then return nil end
    local t = q[q.head]
    q[q.head] = nil
    q.head = q.head + 1
    return t
end

function M.push(q, t)
    q.tail = q.tail + 1
    q[q.tail] = t
end

function M.size(q) return q.tail - q.head + 1 end

-- Counts an error answer and shows the first one of each status per thread on stderr
-- (wrk only counts them), so that a failing profile says why.
function M.note(status, body)
    if status < 400 then return end
    errors = (errors or 0) + 1
    shown = shown or {}
    if not shown[status] then
        shown[status] = true
        io.stderr:write("BENCH-ERROR thread " .. tostring(id) .. ": HTTP " .. status .. " " ..
            tostring(body):sub(1, 200):gsub("%s+$", "") .. "\n")
    end
end

-- The new refresh token of a token-pair body, or nil.
function M.refresh_token(body)
    return body and body:match('"refreshToken"%s*:%s*"([^"]+)"')
end

-- done(): one machine-readable line with the per-thread counters named in `names`.
function M.report(prefix, names)
    local parts = { prefix }
    for _, name in ipairs(names) do
        local total = 0
        for _, t in ipairs(M.threads or {}) do total = total + (tonumber(t:get(name)) or 0) end
        table.insert(parts, name .. "=" .. total)
    end
    io.write(table.concat(parts, " ") .. "\n")
end

return M
