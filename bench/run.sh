#!/usr/bin/env bash
# `make bench`: authd through nginx under wrk, next to two references measured in the
# same run (nginx `return 200` alone, and a minimal C libfcgi responder that checks the
# same HS256 token, also as nginx's auth_request verifier for the gated /app/ rows), on
# a stack of its own on loopback. docs/benchmark.md says how to read the table.
#
# Per round (ROUNDS, default 3): the profiles of the table just below, in its order. The
# stack (redis-server, authd, nginx) is scripts/stack.sh's; the /proc accounting, wrk and
# its output, the records and the API calls are bench/lib.sh's.
# Medians over the rounds go to a Markdown table (stdout, bench/out/results.md) and,
# with every round's figures, to bench/out/results.json. Logs and raw wrk output stay
# in bench/out/work/.
#
# Environment:
#   DURATION (10) seconds per wrk run; ROUNDS (3); QUICK=1 sets DURATION=3 ROUNDS=1
#   AUTHD_BIN=path   benchmark that binary instead of running `swift build -c release --static-swift-stdlib`
#   WORKERS (128)    authd's worker threads; REF_THREADS (128) the C responder's
#   KEEP_CONN (on)   on: `fastcgi_keep_conn on` + upstream `keepalive $KEEPALIVE` (16) for
#                    authd and the C responder alike; off: a new FastCGI connection per
#                    request. Replaces what deploy/nginx.conf says about either.
#   ACCESS_LOG (off) on: nginx writes deploy/nginx.conf's JSON access log (for every
#                    row alike), to see what it costs
#   BENCH_MIX (90,8,2)  percent of GET /, refresh and login in authd-mixed (decimals ok)
#   BENCH_PROFILES   only these profiles (e.g. "authd-get authd-mixed"; for debugging:
#                    the ratios of the others come out empty)
#   BENCH_PORT          first of three loopback ports (authd, C responder, nginx alone);
#                       unset: the first free triple from 18470 on (18470, 18480, ...)
# Other authd settings in the environment (e.g. BCRYPT_CONCURRENCY) reach authd, as
# with `make run`; REDIS_URL, FCGI_LISTEN, secrets and BCRYPT_COST are the bench's own.
#
# SOAK=1 (`make soak`): instead of the rounds, the same stack under one long mixed wrk
# run, sampled for leaks (bench/soak.sh says what and how it is judged); exit status 1
# when a verdict fails. Results in bench/out/soak.json and soak.md. Settings:
#   SOAK_SECONDS (600)  length of the wrk run;   SOAK_INTERVAL (10) seconds between samples
#   SOAK_TTL (120)      authd's REFRESH_TOKEN_TTL (at most SOAK_SECONDS / 3)
#   SOAK_BCRYPT_COST (4)  cheap logins: the soak is about leaks, not bcrypt
#   SOAK_USERS (64)     registered users the logins use; BENCH_MIX as above
#   SOAK_WARMUP (60), SOAK_RSS_GROWTH (10 %), SOAK_FD_SPREAD (2), SOAK_REDIS_MARGIN (25 %)
set -euo pipefail

# --- the profiles -----------------------------------------------------------------------
# One line a profile. A wrk run is `wrk -t2 -c64 -d${DURATION}s --latency -s bench/RUN`
# (`-t1 -c1` with the need c1) on PATH; a RUN without .lua is a function below. `authd`
# groups them: each group runs against
# an authd (and nginx) started for it, every round:
#   base     BCRYPT_COST=10 (always started: round 1 registers the users there)
#   checked  the same, with ACCESS_TOKEN_SESSION_CHECK=true (one Redis EXISTS a request)
#   storm    BCRYPT_COST=12
# `app` is what PATH reaches and whose CPU time, peak RSS and accept queue are measured:
# static (nginx `return 200` alone), ref (bench/ref_responder.c, through nginx) or authd.
# Each is a server of its own in nginx (bench/nginx-bench.awk), with the same /app/: the
# local stack's demo application (scripts/nginx-demo-upstream.conf, a `return 200` of
# nginx's behind proxy_pass) gated by auth_request, answered by authd's GET /auth/verify
# or by the C responder's verify mode, or (static) not gated at all.
# `needs`, for the Lua script: sessions=NAME, 128 refresh tokens logged in before the
# group's profiles (BENCH_SESSIONS); users, the registered users (BENCH_USERS); c1, one
# wrk thread with one connection (latency without queueing).
profiles='
#  name               authd    app     path                 run          needs
   nginx-return200    base     static  /                    get.lua                       # reference
   c-ref-get          base     ref     /                    get.lua                       # reference
   authd-get          base     authd   /                    get.lua                       # a valid access token
   app-open           base     static  /app/                get.lua                       # reference: the demo app, no auth_request
   c-gated            base     ref     /app/                get.lua                       # reference: /app/, verified by the C responder
   authd-gated        base     authd   /app/                get.lua                       # /app/ as shipped: auth_request -> authd verify
   c-gated-c1         base     ref     /app/                get.lua      c1               # the same at one connection
   authd-gated-c1     base     authd   /app/                get.lua      c1
   c-ref-get-c1       base     ref     /                    get.lua      c1
   authd-get-c1       base     authd   /                    get.lua      c1
   authd-refresh      base     authd   /auth/refresh-token  refresh.lua  sessions=refresh # rotates them
   authd-mixed        base     authd   /                    mixed.lua    sessions=mixed users # BENCH_MIX % of GET /, refresh, login
   authd-login        base     authd   /auth/login          login.lua    users
   bcrypt-raw         base     -       -                    bcrypt_raw                    # bench/bcrypt_rate.c, all cores, no server
   authd-get-checked  checked  authd   /                    get.lua
   storm-get          storm    authd   /                    storm                         # while storm-login hammers /auth/login
'

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
bench=$root/bench
out=$bench/out
work=$out/work

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
. "$root/scripts/stack.sh"  # stack_* (redis-server, authd, nginx), alive, free_ports
# shellcheck source=bench/lib.sh
. "$bench/lib.sh"           # /proc accounting, wrk, records, users and sessions
# shellcheck disable=SC2034  # read by wait_for in scripts/stack.sh
PROC_HINT=" (logs in $work)"

# --- settings -----------------------------------------------------------------------
if [[ ${QUICK:-0} == 1 ]]; then
    DURATION=${DURATION:-3}
    ROUNDS=${ROUNDS:-1}
fi
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-128}
REF_THREADS=${REF_THREADS:-128}
KEEP_CONN=${KEEP_CONN:-on}
ACCESS_LOG=${ACCESS_LOG:-off}
KEEPALIVE=${KEEPALIVE:-16}  # as deploy/nginx.conf
BENCH_MIX=${BENCH_MIX:-90,8,2}
base_port=${BENCH_PORT:-18470}
login_cost=10
storm_cost=12
wrk_threads=2
wrk_conns=64
pool_per_thread=64       # refresh sessions per wrk thread (twice its 32 connections)
bcrypt_seconds=3
password='bench password 42'

for v in DURATION ROUNDS WORKERS REF_THREADS KEEPALIVE base_port; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
SOAK=${SOAK:-0}
[[ $SOAK == 0 || $SOAK == 1 ]] || die "SOAK must be 0 or 1, not '$SOAK'"
if [[ $SOAK == 1 ]]; then
    SOAK_SECONDS=${SOAK_SECONDS:-600}
    SOAK_INTERVAL=${SOAK_INTERVAL:-10}
    SOAK_TTL=${SOAK_TTL:-120}
    SOAK_BCRYPT_COST=${SOAK_BCRYPT_COST:-4}
    SOAK_USERS=${SOAK_USERS:-64}
    SOAK_WARMUP=${SOAK_WARMUP:-60}
    SOAK_RSS_GROWTH=${SOAK_RSS_GROWTH:-10}
    SOAK_FD_SPREAD=${SOAK_FD_SPREAD:-2}
    SOAK_REDIS_MARGIN=${SOAK_REDIS_MARGIN:-25}
    for v in SOAK_SECONDS SOAK_INTERVAL SOAK_TTL SOAK_BCRYPT_COST SOAK_USERS SOAK_WARMUP SOAK_RSS_GROWTH; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
    done
    for v in SOAK_FD_SPREAD SOAK_REDIS_MARGIN; do
        [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
    done
    (( SOAK_BCRYPT_COST >= 4 && SOAK_BCRYPT_COST <= 31 )) || die "SOAK_BCRYPT_COST must be 4-31"
    (( SOAK_SECONDS >= 3 * SOAK_TTL )) \
        || die "SOAK_SECONDS ($SOAK_SECONDS) must be at least 3 x SOAK_TTL ($SOAK_TTL) to judge Redis"
    (( SOAK_WARMUP < SOAK_SECONDS )) || die "SOAK_WARMUP must be shorter than SOAK_SECONDS"
    login_cost=$SOAK_BCRYPT_COST
fi
[[ $KEEP_CONN == on || $KEEP_CONN == off ]] || die "KEEP_CONN must be on or off, not '$KEEP_CONN'"
[[ $ACCESS_LOG == on || $ACCESS_LOG == off ]] || die "ACCESS_LOG must be on or off, not '$ACCESS_LOG'"
num='[0-9]+(\.[0-9]+)?'
[[ $BENCH_MIX =~ ^$num,$num,$num$ ]] || die "BENCH_MIX must look like 90,8,2 (percent of GET /, refresh, login)"
awk -F, '{ exit !($1 + $2 + $3 == 100) }' <<<"$BENCH_MIX" || die "BENCH_MIX must add up to 100"
(( base_port + 2 <= 65535 )) || die "BENCH_PORT too high"

for tool in wrk nginx redis-server redis-cli curl jq ss flock setsid; do
    command -v "$tool" >/dev/null || die "'$tool' not found: run 'make deps' (as root) first"
done
# A C compiler: cc, or the clang that comes with the Swift toolchain.
CC=${CC:-cc}
if ! command -v "$CC" >/dev/null; then
    command -v clang >/dev/null || die "no C compiler: install gcc, or put the Swift toolchain's clang on PATH"
    CC=clang
fi
for h in fcgiapp.h openssl/evp.h crypt.h; do
    [[ -e /usr/include/$h ]] || die "/usr/include/$h missing: run 'make deps' (as root) first"
done
mkdir -p "$out"
exec 9>"$out/bench.lock"
flock -n 9 || die "another 'make bench' or 'make soak' is running in $root"
tries=21
[[ -z ${BENCH_PORT:-} ]] || tries=1
base_port=$(free_ports "$base_port" 10 "$tries" 3) \
    || die "127.0.0.1:$base_port is in use (choose other ports with BENCH_PORT=...)"
port_authd=$base_port port_ref=$((base_port + 1)) port_static=$((base_port + 2))
api_base=http://127.0.0.1:$port_authd
rm -rf "$work"
stack_init "$work"
mkdir -p "$work/wrk"
clk_tck=$(getconf CLK_TCK)
ncpu=$(nproc)

# --- process control ------------------------------------------------------------------
# redis-server, authd, nginx (scripts/stack.sh) and the C responder run in sessions of
# their own: Ctrl-C reaches this script, wrk and curl, and the services are then stopped
# in order (nginx and authd would otherwise act on the terminal's SIGINT themselves,
# before the clients have stopped).
ref_pid=''
cleaned=false
cleanup() {
    local status=$?
    $cleaned && return 0
    cleaned=true
    trap '' INT TERM
    (( status == 0 )) || log "stopping everything (exit status $status)"
    stop_background
    # Front to back, so nothing is left waiting on a peer that is gone.
    stack_stop
    stop_one ref_responder "$ref_pid" 5
    rm -f "$work/ref.sock"
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted; stopping everything"; exit 130' INT TERM

# --- build ----------------------------------------------------------------------------
# The commit being built (taken now: others may commit while the bench runs).
git_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=$(git -C "$root" status --porcelain -- Sources Package.swift 2>/dev/null | wc -l)
src_bin=$(authd_binary "$root/.build") || exit 1
# A private copy: another build may replace .build/release/authd during the run.
cp "$src_bin" "$work/authd"
bin=$work/authd
log "building the C reference responder and the bcrypt meter"
"$CC" -O2 "$bench/ref_responder.c" -lfcgi -lcrypto -lpthread -o "$out/ref_responder"
"$CC" -O2 "$bench/bcrypt_rate.c" -lcrypt -lpthread -o "$out/bcrypt_rate"

access_secret=$("$bin" keygen)
refresh_secret=$("$bin" keygen)
[[ $access_secret =~ ^[A-Za-z0-9_-]{32,}$ && $refresh_secret =~ ^[A-Za-z0-9_-]{32,}$ ]] \
    || die "'authd keygen' printed something unexpected"
: >"$work/empty.env"

# --- the stack: redis-server (unix socket only, nothing on disk), the C responder ------
stack_redis_start 'save ""' 'appendonly no'

ACCESS_TOKEN_SECRET=$access_secret setsid "$out/ref_responder" "$work/ref.sock" "$REF_THREADS" \
    </dev/null 2>>"$work/ref.log" 9>&- &
ref_pid=$!
wait_for ref_responder "$ref_pid" 10 test -S "$work/ref.sock"

# nginx: the production file with local paths and the access log off (ACCESS_LOG=on:
# the production JSON log, into $work/nginx/logs/access.log), plus the two references
# (bench/nginx-bench.awk).
NGINX_ACCESS_LOG=$ACCESS_LOG KEEP_CONN=$KEEP_CONN KEEPALIVE=$KEEPALIVE REF_SOCKET=$work/ref.sock \
REF_LISTEN=127.0.0.1:$port_ref STATIC_LISTEN=127.0.0.1:$port_static \
    stack_nginx_conf "127.0.0.1:$port_authd" awk -f "$bench/nginx-bench.awk"

# start_stack COST [SESSION_CHECK]: authd with BCRYPT_COST=COST, then nginx. authd runs
# in the work folder with an empty env file; the environment reaches it, as with
# `make run`, but for the bench's own settings.
start_stack() {
    local cost=$1 session_check=${2:-false}
    # The failed-login limits count logins in flight too (so parallel guesses cannot
    # pass them together): 64 connections logging in as a few users would be 429s.
    # The bench measures hashing, not the brute-force defence.
    stack_authd_start "$bin" "$work/authd-cost$cost.log" \
        ACCESS_TOKEN_SECRET="$access_secret" REFRESH_TOKEN_SECRET="$refresh_secret" \
        WORKERS="$WORKERS" BCRYPT_COST="$cost" ACCESS_TOKEN_SESSION_CHECK="$session_check" \
        LOGIN_USER_MAX_FAILURES=0 LOGIN_ADDRESS_MAX_FAILURES=0 \
        -- --env-file "$work/empty.env"
    stack_nginx_start "$work/nginx/error.log" "$api_base/readyz"
    [[ $(http_code "http://127.0.0.1:$port_static/") == 200 ]] || die "nginx alone does not answer 200"
    [[ $(http_code "http://127.0.0.1:$port_ref/") == 401 ]] || die "the C responder does not answer 401 without a token"
}

stop_stack() {
    stack_nginx_stop
    stack_authd_stop
}

run_id=$(date +%s)-$$

# --- the soak (SOAK=1) instead of the rounds: bench/soak.sh ends the script -------------
if [[ $SOAK == 1 ]]; then
    # shellcheck source=bench/soak.sh
    . "$bench/soak.sh"
fi

# --- running the table ------------------------------------------------------------------
want() { [[ -z ${BENCH_PROFILES:-} || " ${BENCH_PROFILES//,/ } " == *" $1 "* ]]; }

# group_profiles GROUP: the wanted profiles of that group, one line each, without the
# group column and the comments.
group_profiles() {
    local line name group rest
    while read -r line; do
        read -r name group rest <<<"${line%%#*}"
        if [[ -n $name && $group == "$1" ]] && want "$name"; then
            echo "$name $rest"
        fi
    done <<<"$profiles"
}

# run_profile NAME APP PATH RUN [NEED]...: one line of the table.
run_profile() {
    local name=$1 app=$2 path=$3 run=$4 need url='' pid='' sock='' env=()
    local wrk_threads=$wrk_threads wrk_conns=$wrk_conns  # what run_wrk uses, for this profile
    shift 4
    case $app in
        static) url=http://127.0.0.1:$port_static$path ;;
        ref) url=http://127.0.0.1:$port_ref$path pid=$ref_pid sock=$work/ref.sock ;;
        authd) url=$api_base$path pid=$STACK_AUTHD_PID sock=$work/authd.sock ;;
    esac
    if [[ $run != *.lua ]]; then
        "$run"
        return
    fi
    for need in "$@"; do
        case $need in
            sessions=*) env+=("BENCH_SESSIONS=$work/sessions-${need#sessions=}.txt") ;;
            users) env+=("BENCH_USERS=${login_users[*]}") ;;
            c1) wrk_threads=1 wrk_conns=1 ;;
        esac
    done
    profile "$name" "$url" "$bench/$run" "$pid" "$sock" "${env[@]}"
}

# check_gates TAMPERED: the three /app/ servers answer as the gated profiles expect, and
# the C responder's verify hands the demo application the same identity as authd's.
check_gates() {
    local auth="Authorization: Bearer $BENCH_TOKEN" bad="Authorization: Bearer $1" a c
    [[ $(http_code "http://127.0.0.1:$port_static/app/") == 200 ]] || die "app-open: /app/ without a token is not 200"
    [[ $(http_code "http://127.0.0.1:$port_ref/app/") == 401 ]] || die "c-gated: /app/ without a token is not 401"
    [[ $(http_code -H "$bad" "http://127.0.0.1:$port_ref/app/") == 401 ]] || die "c-gated: a tampered token passes"
    [[ $(http_code -H "$bad" "$api_base/app/") == 401 ]] || die "authd-gated: a tampered token passes"
    a=$(curl -sS -m 5 -H "$auth" "$api_base/app/") || die "authd-gated: curl failed"
    c=$(curl -sS -m 5 -H "$auth" "http://127.0.0.1:$port_ref/app/") || die "c-gated: curl failed"
    [[ $a == *'"user":"'?* && $a == "$c" ]] \
        || die "the demo app sees different identities: authd's verify '$a', the C responder's '$c'"
}

# The groups: start the stack, then what its profiles need.
login_users=() storm_users=()
group_base() {
    local line need sig flip tampered
    log "round $round/$ROUNDS: authd with BCRYPT_COST=$login_cost"
    start_stack "$login_cost"
    if (( round == 1 )); then
        register_users login_users bench 8
        use_token "$last_token"
        # Both the C responder and authd must answer this token with 200.
        [[ $(http_code -H "Authorization: Bearer $BENCH_TOKEN" "http://127.0.0.1:$port_ref/") == 200 ]] \
            || die "the C responder refuses authd's token"
        # A different first signature character changes the first signature byte.
        sig=${BENCH_TOKEN##*.}
        [[ ${sig:0:1} == A ]] && flip=B || flip=A
        tampered=${BENCH_TOKEN%.*}.$flip${sig:1}
        [[ $(http_code -H "Authorization: Bearer $tampered" "http://127.0.0.1:$port_ref/") == 401 ]] \
            || die "the C responder accepts a tampered token"
        [[ $(http_code -H "Authorization: Bearer $tampered" "$api_base/") == 401 ]] \
            || die "authd accepts a tampered token"
        check_gates "$tampered"
    fi
    for line in "$@"; do
        for need in $line; do
            if [[ $need == sessions=* ]]; then
                make_sessions $((pool_per_thread * wrk_threads)) "$work/sessions-${need#sessions=}.txt" "${login_users[@]}"
            fi
        done
    done
    settle "$STACK_AUTHD_PID"
}
group_checked() {
    log "round $round/$ROUNDS: authd with ACCESS_TOKEN_SESSION_CHECK=true"
    start_stack "$login_cost" true
    [[ $(http_code -H "Authorization: Bearer $BENCH_TOKEN" "$api_base/") == 200 ]] \
        || die "authd with the session check refuses the bench token (its session ended?)"
    settle "$STACK_AUTHD_PID"
}
group_storm() {
    log "round $round/$ROUNDS: authd with BCRYPT_COST=$storm_cost (login storm)"
    start_stack "$storm_cost"
    (( round > 1 )) || register_users storm_users storm 2
}

# bcrypt-raw: bcrypt at the login cost on all cores, no server (bench/bcrypt_rate.c).
bcrypt_raw() {
    local rate hashes nthreads
    read -r rate hashes _ nthreads < <("$out/bcrypt_rate" "$login_cost" "$bcrypt_seconds" "$ncpu")
    record round="$round" profile=bcrypt-raw rps="$rate" requests="$hashes" threads="$nthreads"
    printf '  %-16s %9.1f hashes/s at cost %d on %d threads\n' bcrypt-raw "$rate" "$login_cost" "$nthreads" >&2
}

# storm-get (and storm-login): login at cost 12 on 64 connections for DURATION+2 s; 1 s
# in, GET / for DURATION s.
storm() {
    local fa=$work/wrk/r$round-storm-login.txt fb=$work/wrk/r$round-storm-get.txt
    local t0 t1 pa pb rps p50 p99 req bad se to hwm q lreq cpu
    t0=$(cpu_ticks "$STACK_AUTHD_PID")
    start_sampler "$work/authd.sock" "$fb.recvq"
    run_wrk "$fa" $((DURATION + 2)) "$bench/login.lua" "$api_base/auth/login" "BENCH_USERS=${storm_users[*]}"
    pa=$wrk_pid
    sleep 1
    run_wrk "$fb" "$DURATION" "$bench/get.lua" "$api_base/"
    pb=$wrk_pid
    wait_wrk "$pb" "$fb"
    wait_wrk "$pa" "$fa"
    alive "$STACK_AUTHD_PID" || die "storm: authd died during the run (logs in $work)"
    t1=$(cpu_ticks "$STACK_AUTHD_PID")
    stop_sampler "$fb.recvq"
    q=$recvq_max
    hwm=$(vmhwm_kib "$STACK_AUTHD_PID")
    read -r rps p50 p99 lreq bad se to < <(parse_wrk "$fa")
    record round="$round" profile=storm-login rps="$rps" p50_ms="$p50" p99_ms="$p99" requests="$lreq" \
        non2xx="$bad" socket_errors="$se" timeouts="$to" cpu_us=null vmhwm_kib="$hwm" recvq_max="$q"
    printf '  %-16s %9.0f req/s  p50 %7.2f ms  p99 %8.2f ms  non-2xx %d (503 expected)  socket errors %d\n' \
        storm-login "$rps" "$p50" "$p99" "$bad" "$se" >&2
    read -r rps p50 p99 req bad se to < <(parse_wrk "$fb")
    # CPU over the whole storm, for the logins and the GETs together.
    cpu=$(per_request $((t1 - t0)) $((req + lreq)))
    record round="$round" profile=storm-get rps="$rps" p50_ms="$p50" p99_ms="$p99" requests="$req" \
        non2xx="$bad" socket_errors="$se" timeouts="$to" cpu_us="$cpu" vmhwm_kib="$hwm" recvq_max="$q"
    printf '  %-16s %9.0f req/s  p50 %7.2f ms  p99 %8.2f ms  non-2xx %d  socket errors %d  recv-q max %s\n' \
        storm-get "$rps" "$p50" "$p99" "$bad" "$se" "$q" >&2
    settle "$STACK_AUTHD_PID"
}

# --- the rounds -------------------------------------------------------------------------
# How busy the machine is without us, just before the rounds (after the build).
start_measuring "the rounds start; figures will be low and noisy"
log "DURATION=${DURATION}s ROUNDS=$ROUNDS WORKERS=$WORKERS KEEP_CONN=$KEEP_CONN KEEPALIVE=$KEEPALIVE REF_THREADS=$REF_THREADS MIX=$BENCH_MIX ports $port_authd/$port_ref/$port_static"
for (( round = 1; round <= ROUNDS; round++ )); do
    for group in base checked storm; do
        mapfile -t lines < <(group_profiles "$group")
        (( ${#lines[@]} > 0 )) || [[ $group == base ]] || continue
        "group_$group" "${lines[@]}"
        for line in "${lines[@]}"; do
            read -ra fields <<<"$line"
            run_profile "${fields[@]}"
        done
        stop_stack
    done
done
elapsed=$((SECONDS - started))
# Everything of ours has stopped and been reaped: what the machine did beyond our own
# processes (another build or benchmark) is the "other load" of the run.
cleanup
stop_measuring
if awk -v v="$other_load_pct" 'BEGIN { exit !(v > 5) }'; then
    log "warning: other processes used ${other_load_pct}% of the machine during the run; rerun on a quiet machine"
fi

# --- report -----------------------------------------------------------------------------
authd_errors=$(cat "$work"/authd-cost*.log | grep -c -E '^[^ ]+ (error|critical)' || true)
wrk_version=$(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }' || true)
nginx_version=$(nginx -v 2>&1 | sed 's|.*nginx/||')
redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
bin_sha=$(sha256sum "$bin" | cut -c1-12)
# What the production file says, next to what the bench used.
deploy_keep=$(awk '/^[ \t]*fastcgi_keep_conn[ \t]/ { v = $2; sub(/;$/, "", v); print v; exit }' deploy/nginx.conf)
deploy_keep=${deploy_keep:-off}
deploy_keepalive=$(awk '/^[ \t]*keepalive[ \t]/ { v = $2; sub(/;$/, "", v); print v; exit }' deploy/nginx.conf)
deploy_keepalive=${deploy_keepalive:-none}
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

jq -s \
    --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson nproc "$ncpu" --arg cpu "$cpu_model" \
    --arg kernel "$(uname -sr)" --arg wrk "$wrk_version" --arg nginx "$nginx_version" --arg redis "$redis_version" \
    --arg bin_from "${AUTHD_BIN:-swift build}" --arg git "$git_rev" --argjson dirty "$git_dirty" --arg bin_sha "$bin_sha" \
    --argjson duration "$DURATION" --argjson rounds "$ROUNDS" --argjson workers "$WORKERS" \
    --argjson ref_threads "$REF_THREADS" --arg keep_conn "$KEEP_CONN" --argjson keepalive "$KEEPALIVE" --arg access_log "$ACCESS_LOG" \
    --arg deploy_keep "$deploy_keep" --arg deploy_keepalive "$deploy_keepalive" --arg mix "$BENCH_MIX" \
    --argjson login_cost "$login_cost" --argjson storm_cost "$storm_cost" \
    --argjson elapsed "$elapsed" --argjson authd_log_errors "$authd_errors" \
    --argjson busy_before "$idle_busy_pct" --argjson other_load "$other_load_pct" \
    -f "$bench/report.jq" "$work/records.jsonl" >"$out/results.json"
jq -r -f "$bench/table.jq" "$out/results.json" | tee "$out/results.md"
log "results: bench/out/results.json, bench/out/results.md; raw wrk output and logs: bench/out/work/"
