# shellcheck shell=bash disable=SC2154,SC2153  # variables and functions are bench/run.sh's and bench/lib.sh's
# The soak: `SOAK=1 bash bench/run.sh` (`make soak`). Sourced by bench/run.sh after it
# has built authd and configured redis-server and nginx, so the stack is the bench's
# own; this file only replaces the bench's rounds and report. It ends the script.
#
# One authd with REFRESH_TOKEN_TTL=$SOAK_TTL and BCRYPT_COST=$SOAK_BCRYPT_COST, one wrk
# (`-t2 -c64`, bench/soak.lua) for SOAK_SECONDS: BENCH_MIX percent of GET / (with a
# valid access token), refreshes rotating a pool of 128 sessions (which therefore stay
# alive), and logins of SOAK_USERS registered users (whose new sessions are never used
# again, so they must expire after SOAK_TTL). No registrations: users never expire, so
# they would grow Redis without bound by design. Every SOAK_INTERVAL seconds one sample:
# authd's VmRSS, open fds (of which: not sockets, and FastCGI connections), threads and
# Redis connections (Redis's connected_clients); Redis's DBSIZE, live
# `auth:session:*` keys (SCAN, which skips keys past their TTL), used_memory and its
# expired_keys counter. Then a table, verdicts, bench/out/soak.json and soak.md; the
# exit status is 1 when a verdict fails.
#
# Verdicts (the thresholds are settings, defaults in brackets):
#   RSS      authd's VmRSS at the end is less than SOAK_RSS_GROWTH [10] % above the
#            sample at SOAK_WARMUP [60] s (the issue: "grows less than 10 % after the
#            first minute").
#   fds      authd's total fd count cannot be flat to a few units: its FastCGI
#            connections come and go with nginx's (at this load nginx opens and closes
#            hundreds a second beyond the `keepalive` ones it caches; two counts 5 ms
#            apart differ by 10-20). So the fds are judged in three parts, from
#            SOAK_WARMUP [60] s on:
#            - the fds that are not sockets (files, pipes, eventfds), authd's worker
#              threads and its Redis connections (one per worker that has used Redis,
#              counted by Redis: connected_clients) are flat: max - min <= SOAK_FD_SPREAD
#              [2] for each;
#            - the FastCGI connections (connected sockets bound to authd's socket path,
#              from ss) never exceed what nginx can hold open: one per wrk connection in
#              flight plus `keepalive` idle ones per nginx worker (64 + 16 x 2 here). A
#              connection authd failed to close would stay bound to that path and push
#              the count past the bound within seconds at this churn.
#            The total (`ls /proc/PID/fd | wc -l`) is shown as well.
#   Redis    bounded: once one TTL has passed, every login session created since the
#            start would still be alive if nothing expired, so with expiry the key count
#            (and used_memory) reaches its plateau about one TTL in, and afterwards only
#            follows the login rate. The reference is the maximum of the samples taken
#            up to TTL + 2 intervals (the 2 intervals: Redis reclaims expired keys
#            lazily, and sessions created just before a sample expire after it); the
#            last sample may exceed it by at most SOAK_REDIS_MARGIN [25] %, which
#            absorbs a login rate that drifts with other load on the machine. Without
#            expiry the last sample would be about SOAK_SECONDS / TTL times the
#            reference (5x with the defaults), with a leak of part of the sessions
#            proportionally less, so the margin still tells them apart. Also Redis's
#            expired_keys counter must have moved when logins succeeded: sessions
#            really expired. SOAK_SECONDS must be at least 3 x SOAK_TTL.
#   HTTP     no 5xx (the issue), and no other non-2xx answer and no socket error
#            either: every request of this load is valid, so a 4xx means a lost pool
#            session or a refused token, i.e. a bug.

soak_log=$work/authd-cost$login_cost.log
soak_wrk=$work/wrk/soak.txt
soak_samples=$work/soak-samples.jsonl
: >"$soak_samples"

start_measuring "the soak starts"

log "soak: ${SOAK_SECONDS}s, sample every ${SOAK_INTERVAL}s, REFRESH_TOKEN_TTL=${SOAK_TTL}s, BCRYPT_COST=$login_cost, MIX=$BENCH_MIX, $SOAK_USERS login users, WORKERS=$WORKERS KEEP_CONN=$KEEP_CONN KEEPALIVE=$KEEPALIVE, port $port_authd"
export REFRESH_TOKEN_TTL=$SOAK_TTL
start_stack "$login_cost"
nginx_nworkers=$(wc -w <<<"$STACK_NGINX_WORKERS")
fcgi_bound=$wrk_conns
[[ $KEEP_CONN == off ]] || fcgi_bound=$((wrk_conns + KEEPALIVE * nginx_nworkers))

soak_users=()
register_users soak_users soak "$SOAK_USERS"
use_token "$last_token"
pool_size=$((pool_per_thread * wrk_threads))
make_sessions "$pool_size" "$work/sessions-soak.txt" "${soak_users[@]}"
settle "$STACK_AUTHD_PID"

redis_cmd() { redis-cli -s "$work/redis.sock" "$@"; }

# soak_sample T: one JSON line with authd's and Redis's figures at nominal time T.
soak_sample() {
    local t=$1 rss threads fds socks nonsock fcgi cpu dbsize sessions used expired clients
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$STACK_AUTHD_PID/status")
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$STACK_AUTHD_PID/status")
    # All open fds (= `ls /proc/PID/fd | wc -l`), from one pass over the fd table: sockets
    # and the rest (files, pipes, eventfds...). An fd closed while find lists the table
    # is skipped.
    read -r fds socks nonsock < <(find "/proc/$STACK_AUTHD_PID/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null |
        awk '{ n++; if ($0 ~ /^socket:/) s++ } END { print n + 0, s + 0, n - s }')
    # The FastCGI connections authd has accepted: the connected sockets bound to its path.
    fcgi=$(ss -xH state established src "$work/authd.sock" 2>/dev/null | wc -l)
    cpu=$(cpu_ticks "$STACK_AUTHD_PID")
    dbsize=$(redis_cmd DBSIZE)
    sessions=$(redis_cmd --scan --pattern 'auth:session:*' | wc -l)
    # connected_clients counts this redis-cli too: authd's connections are the rest.
    read -r used expired clients < <(redis_cmd INFO memory stats clients | tr -d '\r' |
        awk -F: '$1 == "used_memory" { u = $2 } $1 == "expired_keys" { e = $2 }
                 $1 == "connected_clients" { c = $2 } END { print u + 0, e + 0, c - 1 }')
    printf '{"t":%d,"rss_kib":%d,"fds":%d,"fd_sockets":%d,"fd_other":%d,"fcgi_conns":%d,"redis_conns":%d,"threads":%d,"cpu_s":%.2f,"keys":%d,"session_keys":%d,"used_memory":%d,"expired_keys":%d}\n' \
        "$t" "$rss" "$fds" "$socks" "$nonsock" "$fcgi" "$clients" "$threads" \
        "$(awk -v c="$cpu" -v hz="$clk_tck" 'BEGIN { print c / hz }')" \
        "$dbsize" "$sessions" "$used" "$expired"
}

now_us() { echo $(( ${EPOCHREALTIME/./} )); }

run_wrk "$soak_wrk" "$SOAK_SECONDS" "$bench/soak.lua" "$api_base/" \
    "BENCH_SESSIONS=$work/sessions-soak.txt" "BENCH_USERS=${soak_users[*]}"
soak_wrk_pid=$wrk_pid
t0=$(now_us)
for (( k = 0; k * SOAK_INTERVAL <= SOAK_SECONDS; k++ )); do
    t=$((k * SOAK_INTERVAL))
    wait_us=$(( t0 + t * 1000000 - $(now_us) ))
    if (( wait_us > 0 )); then
        sleep "$((wait_us / 1000000)).$(printf '%06d' $((wait_us % 1000000)))"
    fi
    alive "$STACK_AUTHD_PID" || die "authd died during the soak (logs in $work)"
    # wrk stops at SOAK_SECONDS; before that, its exit is a failure that wait_wrk reports.
    if (( t < SOAK_SECONDS )) && ! alive "$soak_wrk_pid"; then
        log "wrk stopped early, at ${t}s"
        break
    fi
    line=$(soak_sample "$t")
    echo "$line" >>"$soak_samples"
    jq -r '"  t=\(.t)s  RSS \(.rss_kib / 1024 * 10 | round / 10) MiB  fds \(.fds) (non-socket \(.fd_other), Redis \(.redis_conns), FastCGI \(.fcgi_conns))  threads \(.threads)  keys \(.keys) (sessions \(.session_keys))  used_memory \(.used_memory / 1048576 * 100 | round / 100) MiB  expired \(.expired_keys)"' <<<"$line" >&2
done
wait_wrk "$soak_wrk_pid" "$soak_wrk"
alive "$STACK_AUTHD_PID" || die "authd died during the soak (logs in $work)"
grep '^BENCH-ERROR' "$soak_wrk" >&2 || true
read -r rps p50 p99 req bad se to < <(parse_wrk "$soak_wrk")
# The Lua counters: "BENCH soak gets=.. ..." and "BENCH-STATUS status_200=.. ...".
lua_counts=$({ grep -E '^BENCH(-STATUS| soak) ' "$soak_wrk" || true; } | cut -d' ' -f2- | tr ' ' '\n' | { grep '=' || true; } |
    jq -R -s 'split("\n") | map(select(length > 0) | split("=") | {(.[0]): (.[1] | tonumber)}) | add // {}')

elapsed=$((SECONDS - started))
cleanup
stop_measuring
authd_errors=$(grep -c -E '^[^ ]+ (error|critical)' "$soak_log" || true)

jq -s \
    --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson nproc "$ncpu" \
    --arg git "$git_rev" --argjson dirty "$git_dirty" --arg bin_sha "$(sha256sum "$bin" | cut -c1-12)" \
    --arg bin_from "${AUTHD_BIN:-swift build}" \
    --argjson seconds "$SOAK_SECONDS" --argjson interval "$SOAK_INTERVAL" --argjson ttl "$SOAK_TTL" \
    --argjson warmup "$SOAK_WARMUP" --argjson rss_growth "$SOAK_RSS_GROWTH" \
    --argjson fd_spread "$SOAK_FD_SPREAD" --argjson fcgi_bound "$fcgi_bound" --argjson nginx_workers "$nginx_nworkers" --argjson redis_margin "$SOAK_REDIS_MARGIN" \
    --argjson cost "$login_cost" --arg mix "$BENCH_MIX" --argjson users "$SOAK_USERS" \
    --argjson pool "$pool_size" --argjson workers "$WORKERS" --arg keep_conn "$KEEP_CONN" \
    --argjson keepalive "$KEEPALIVE" --argjson conns "$wrk_conns" --argjson wrk_threads "$wrk_threads" \
    --argjson rps "$rps" --argjson p50 "$p50" --argjson p99 "$p99" --argjson requests "$req" \
    --argjson non2xx "$bad" --argjson socket_errors "$se" --argjson timeouts "$to" \
    --argjson lua "$lua_counts" --argjson elapsed "$elapsed" --argjson authd_log_errors "$authd_errors" \
    --argjson busy_before "$idle_busy_pct" --argjson other_load "$other_load_pct" \
    -f "$bench/soak.jq" "$soak_samples" >"$out/soak.json"
jq -r -f "$bench/soak-table.jq" "$out/soak.json" | tee "$out/soak.md"
log "soak: bench/out/soak.json, bench/out/soak.md; raw wrk output and logs: bench/out/work/"
if awk -v v="$other_load_pct" 'BEGIN { exit !(v > 5) }'; then
    log "warning: other processes used ${other_load_pct}% of the machine during the soak"
fi
if [[ $(jq -r .pass "$out/soak.json") == true ]]; then
    exit 0
fi
log "soak FAILED (verdicts above)"
exit 1
