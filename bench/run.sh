#!/usr/bin/env bash
# `make bench`: authd through nginx under wrk, next to two references measured in the
# same run (nginx `return 200` alone, and a minimal C libfcgi responder that checks the
# same HS256 token), on a stack of its own on loopback. docs/benchmark.md says how
# to read the table.
#
# Per round (ROUNDS, default 3), each wrk run being `wrk -t2 -c64 -d${DURATION}s --latency`:
#   nginx-return200   GET / answered by nginx itself                     (reference)
#   c-ref-get         GET / through nginx to bench/ref_responder.c       (reference)
#   authd-get         GET / with a valid access token                    (bench/get.lua)
#   authd-get-checked the same on an authd restarted with ACCESS_TOKEN_SESSION_CHECK=true
#                     (one Redis EXISTS per request)
#   authd-refresh     POST /auth/refresh-token rotating 128 real sessions (bench/refresh.lua)
#   authd-mixed       BENCH_MIX % of GET / , refresh, login (bench/mixed.lua)
#   authd-login       POST /auth/login at BCRYPT_COST=10                  (bench/login.lua)
#   bcrypt-raw        bcrypt cost 10 on all cores, no server             (bench/bcrypt_rate.c)
#   storm-get         GET / while another wrk (storm-login, 64 connections) hammers
#                     POST /auth/login on an authd restarted with BCRYPT_COST=12
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

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
bench=$root/bench
out=$bench/out
work=$out/work
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin ;; esac

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
. "$root/scripts/stack.sh"  # alive, stop_one, wait_for, ...
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
check_work_dir "$work"

mkdir -p "$out"
exec 9>"$out/bench.lock"
flock -n 9 || die "another 'make bench' or 'make soak' is running in $root"
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for (( try = 0; ; try++ )); do
    port_authd=$base_port port_ref=$((base_port + 1)) port_static=$((base_port + 2))
    busy=''
    for p in "$port_authd" "$port_ref" "$port_static"; do
        if port_busy "$p"; then busy=$p; break; fi
    done
    [[ -n $busy ]] || break
    if [[ -n ${BENCH_PORT:-} ]] || (( try >= 20 )); then
        die "127.0.0.1:$busy is in use (choose other ports with BENCH_PORT=...)"
    fi
    base_port=$((base_port + 10))
done
rm -rf "$work"
mkdir -p "$work/wrk" "$work/redis" "$work/nginx"
clk_tck=$(getconf CLK_TCK)
ncpu=$(nproc)

# "busy total" jiffies of the whole machine (all CPUs) from /proc/stat. Busy counts user,
# nice and system time only: irq/softirq time (loopback traffic) is not charged to any
# process, so it could not be told apart from other processes' load.
machine_ticks() {
    local _ u n s i w irq sirq st
    read -r _ u n s i w irq sirq st _ </proc/stat
    echo "$((u + n + s)) $((u + n + s + i + w + irq + sirq + st))"
}
# CPU seconds of this shell and of all its reaped children (`times`), in ticks.
own_ticks() {
    times >"$work/times.txt"   # in this shell: a subshell would report its own (zero) times
    awk -v hz="$clk_tck" '
        { for (i = 1; i <= NF; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] } }
        END { printf "%d\n", t * hz }' "$work/times.txt"
}

# --- process control ------------------------------------------------------------------
# redis-server, authd, nginx and the C responder run in sessions of their own (setsid,
# which execs in place here, so $! is their pid): Ctrl-C reaches this script, wrk and
# curl, and the services are then stopped in order (nginx and authd would otherwise act
# on the terminal's SIGINT themselves, before the clients have stopped).
redis_pid='' ref_pid='' authd_pid='' nginx_pid='' nginx_workers=''
bg_pids=()          # wrk runs and samplers in flight (forgotten once reaped)
forget() {
    local p keep=()
    for p in "${bg_pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    bg_pids=("${keep[@]}")
}
sampler_flag=$work/sampling



stop_nginx() {
    stop_nginx_tree "$nginx_pid" "$nginx_workers"
    nginx_pid='' nginx_workers=''
}

stop_authd() {
    stop_one authd "$authd_pid" 20
    authd_pid=''
    rm -f "$work/authd.sock"
}

cleaned=false
cleanup() {
    local status=$? pid
    $cleaned && return 0
    cleaned=true
    trap '' INT TERM
    (( status == 0 )) || log "stopping everything (exit status $status)"
    rm -f "$sampler_flag"
    for pid in "${bg_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${bg_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    # Front to back, so nothing is left waiting on a peer that is gone.
    stop_nginx
    stop_authd
    stop_one ref_responder "$ref_pid" 5
    stop_one redis-server "$redis_pid" 10
    rm -f "$work/ref.sock" "$work/redis.sock"
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted; stopping everything"; exit 130' INT TERM


# utime + stime of a process, in clock ticks (0 without a pid).
cpu_ticks() {
    local stat f
    [[ -n ${1:-} ]] || { echo 0; return; }
    read -r stat <"/proc/$1/stat"
    stat=${stat##*) }
    read -ra f <<<"$stat"
    echo $(( f[11] + f[12] ))
}
nginx_ticks() {
    local pid sum=0
    for pid in $nginx_workers; do sum=$(( sum + $(cpu_ticks "$pid") )); done
    echo "$sum"
}
vmhwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# settle PID: wait (at most 20 s) until the process has stopped using CPU, so work left
# over from one profile (queued logins) does not leak into the next.
settle() {
    local pid=$1 before after i=0
    [[ -n $pid ]] || return 0
    after=$(cpu_ticks "$pid")
    while (( i < 100 )); do
        sleep 0.2
        before=$after
        after=$(cpu_ticks "$pid")
        (( after - before > 1 )) || return 0
        i=$((i + 1))
    done
    log "warning: pid $pid still busy 20 s after the profile"
}

# Accept-queue length of a listening unix socket, sampled every 0.2 s while the flag
# file exists: connections nginx opened that no worker thread has accepted yet.
start_sampler() {
    local sock=$1 file=$2
    : >"$file"
    sampler_pid=''
    [[ -n $sock ]] || return 0
    : >"$sampler_flag"
    (
        while [[ -e $sampler_flag ]]; do
            ss -xlH src "$sock" 2>/dev/null | awk '{ print $3 }'
            sleep 0.2
        done
    ) >"$file" 9>&- &
    sampler_pid=$!
    bg_pids+=("$sampler_pid")
}
stop_sampler() {   # sets recvq_max to the largest sample (null when nothing was sampled)
    rm -f "$sampler_flag"
    recvq_max=null
    [[ -n $sampler_pid ]] || return 0
    wait "$sampler_pid" 2>/dev/null || true
    forget "$sampler_pid"
    recvq_max=$(awk 'BEGIN { m = 0 } $1 + 0 > m { m = $1 + 0 } END { print m }' "$1")
}

# record key=value...: one JSON object per line into records.jsonl.
record() {
    local kv k v args=()
    for kv in "$@"; do
        k=${kv%%=*} v=${kv#*=}
        if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ || $v == null ]]; then
            args+=(--argjson "$k" "$v")
        else
            args+=(--arg "$k" "$v")
        fi
    done
    jq -n -c '$ARGS.named' "${args[@]}" >>"$work/records.jsonl"
}

# parse_wrk FILE: "req/s p50_ms p99_ms requests non2xx socket_errors timeouts"
parse_wrk() {
    awk '
    function ms(v,   n, u) {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") return n / 1000
        if (u == "s") return n * 1000
        if (u == "m") return n * 60000
        return n
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    / requests in / { req = $1 }
    /Socket errors:/ {
        for (i = 3; i <= NF; i++) { x = $i; gsub(/,/, "", x); if (x ~ /^[0-9]+$/) se += x }
        to = $NF
    }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /^Requests\/sec:/ { rps = $2 }
    END { printf "%.2f %.3f %.3f %d %d %d %d\n", rps, p50, p99, req, bad, se, to }
    ' "$1"
}

# --- build ----------------------------------------------------------------------------
# The commit being built (taken now: others may commit while the bench runs).
git_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=$(git -C "$root" status --porcelain -- Sources Package.swift 2>/dev/null | wc -l)
src_bin=$(authd_binary "$root/.build") || die "the release build failed"
[[ -x $src_bin ]] || die "no executable authd at $src_bin"
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

# --- redis-server (unix socket only, nothing on disk) -----------------------------------
cat >"$work/redis.conf" <<EOF
port 0
unixsocket "$work/redis.sock"
unixsocketperm 700
dir "$work/redis"
logfile "$work/redis/redis.log"
daemonize no
save ""
appendonly no
EOF
setsid redis-server "$work/redis.conf" </dev/null 9>&- &
redis_pid=$!
wait_for redis-server "$redis_pid" 20 \
    bash -c "[[ \$(redis-cli -s '$work/redis.sock' ping) == PONG ]]"

# --- the C reference responder ----------------------------------------------------------
(
    export ACCESS_TOKEN_SECRET=$access_secret
    exec setsid "$out/ref_responder" "$work/ref.sock" "$REF_THREADS"
) </dev/null 2>>"$work/ref.log" 9>&- &
ref_pid=$!
wait_for ref_responder "$ref_pid" 10 test -S "$work/ref.sock"

# --- nginx configuration: production file, local paths, access log off, + references -----
NGINX_ACCESS_LOG=off bash scripts/nginx-conf.sh "$work/nginx" "127.0.0.1:$port_authd" "$work/authd.sock" \
    >"$work/nginx/generated.conf"
KEEP_CONN=$KEEP_CONN KEEPALIVE=$KEEPALIVE REF_SOCKET=$work/ref.sock REF_LISTEN=127.0.0.1:$port_ref \
STATIC_LISTEN=127.0.0.1:$port_static \
    awk -f "$bench/nginx-bench.awk" "$work/nginx/generated.conf" >"$work/nginx/nginx.conf"
nginx -t -q -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;'

http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" || true; }

start_stack() {   # start_stack COST [SESSION_CHECK]: authd with BCRYPT_COST=COST, then nginx
    local cost=$1 session_check=${2:-false}
    rm -f "$work/authd.sock"
    (
        cd "$work"
        export ACCESS_TOKEN_SECRET=$access_secret REFRESH_TOKEN_SECRET=$refresh_secret
        export REDIS_URL="unix://$work/redis.sock" FCGI_LISTEN="$work/authd.sock"
        export WORKERS BCRYPT_COST=$cost ACCESS_TOKEN_SESSION_CHECK=$session_check
        # The failed-login limits count logins in flight too (so parallel guesses cannot
        # pass them together): 64 connections logging in as a few users would be 429s.
        # The bench measures hashing, not the brute-force defence.
        export LOGIN_USER_MAX_FAILURES=0 LOGIN_ADDRESS_MAX_FAILURES=0
        exec setsid "$bin" serve --env-file "$work/empty.env"
    ) </dev/null 2>>"$work/authd-cost$cost.log" 9>&- &
    authd_pid=$!
    wait_for authd "$authd_pid" 60 test -S "$work/authd.sock"
    setsid nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' \
        </dev/null 2>>"$work/nginx/error.log" 9>&- &
    nginx_pid=$!
    wait_for nginx "$nginx_pid" 20 \
        bash -c "[[ \$(curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:$port_authd/readyz) == 200 ]]"
    nginx_workers=$(ps -o pid= --ppid "$nginx_pid" | tr -s ' \n' ' ')
    [[ $(http_code "http://127.0.0.1:$port_static/") == 200 ]] || die "nginx alone does not answer 200"
    [[ $(http_code "http://127.0.0.1:$port_ref/") == 401 ]] || die "the C responder does not answer 401 without a token"
}

stop_stack() {
    stop_nginx
    stop_authd
}

api_base=http://127.0.0.1:$port_authd

# register NAME: prints the access token of the new user.
register() {
    local body code
    body=$(curl -sS -m 30 -w '\n%{http_code}' -X POST "$api_base/auth/register" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"username\":\"$1\",\"password\":\"$password\"}") || die "register $1: curl failed"
    code=${body##*$'\n'}
    [[ $code == 201 ]] || die "register $1: HTTP $code: ${body%$'\n'*}"
    jq -r .accessToken <<<"${body%$'\n'*}"
}

# make_sessions N FILE USERS...: N logins (4 at a time), one refresh token per line. A
# login refused for load (503 after 5 s in the hashing queue on a busy machine) is
# tried again, a few times.
make_sessions() {
    local n=$1 file=$2 i got=0 try
    shift 2
    local users=("$@")
    : >"$file"
    for (( try = 1; try <= 5 && got < n; try++ )); do
        for (( i = got; i < n; i++ )); do echo "${users[i % ${#users[@]}]}"; done |
            xargs -P 4 -I{} curl -sS -m 60 -X POST "$api_base/auth/login" \
                -H 'Content-Type: application/json' -w '\n' \
                --data-binary "{\"username\":\"{}\",\"password\":\"$password\"}" |
            jq -r '.refreshToken // empty' >>"$file" || true
        got=$(wc -l <"$file")
    done
    (( got == n )) || die "wanted $n sessions, got $got (see $work/authd-cost$login_cost.log)"
}

run_wrk() {   # run_wrk OUTFILE SECONDS SCRIPT URL: in the background; sets wrk_pid
    wrk -t"$wrk_threads" -c"$wrk_conns" -d"$2s" --timeout 10s --latency -s "$3" "$4" \
        >"$1" 2>&1 </dev/null 9>&- &
    wrk_pid=$!
    bg_pids+=("$wrk_pid")
}
wait_wrk() {   # wait_wrk PID OUTFILE
    local rc=0
    wait "$1" || rc=$?
    forget "$1"
    (( rc == 0 )) || { cat "$2" >&2; die "wrk failed (status $rc), output above"; }
    grep -q '^Requests/sec:' "$2" || { cat "$2" >&2; die "wrk printed no summary"; }
}

# profile NAME URL SCRIPT APP_PID SOCKET: one wrk run, with the app's CPU time, peak
# RSS and accept-queue samples around it.
profile() {
    local name=$1 url=$2 script=$3 pid=$4 sock=$5
    local file=$work/wrk/r$round-$name.txt t0 t1 n0 n1 rps p50 p99 req bad se to cpu ncpu_us hwm q extra
    t0=$(cpu_ticks "$pid") n0=$(nginx_ticks)
    start_sampler "$sock" "$file.recvq"
    run_wrk "$file" "$DURATION" "$script" "$url"
    wait_wrk "$wrk_pid" "$file"
    [[ -z $pid ]] || alive "$pid" || die "$name: pid $pid died during the run (logs in $work)"
    grep '^BENCH-ERROR' "$file" >&2 || true
    t1=$(cpu_ticks "$pid") n1=$(nginx_ticks)
    stop_sampler "$file.recvq"
    q=$recvq_max
    read -r rps p50 p99 req bad se to < <(parse_wrk "$file")
    cpu=null hwm=null
    if [[ -n $pid ]]; then
        cpu=$(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v n="$req" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }')
        hwm=$(vmhwm_kib "$pid")
    fi
    ncpu_us=$(awk -v t=$((n1 - n0)) -v hz="$clk_tck" -v n="$req" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }')
    extra=$(grep '^BENCH ' "$file" | cut -d' ' -f3- || true)
    record round="$round" profile="$name" rps="$rps" p50_ms="$p50" p99_ms="$p99" requests="$req" \
        non2xx="$bad" socket_errors="$se" timeouts="$to" cpu_us="$cpu" nginx_cpu_us="$ncpu_us" \
        vmhwm_kib="$hwm" recvq_max="$q" lua="${extra:-}"
    printf '  %-16s %9.0f req/s  p50 %7.2f ms  p99 %8.2f ms  non-2xx %d  socket errors %d  cpu %s us/req  recv-q max %s %s\n' \
        "$name" "$rps" "$p50" "$p99" "$bad" "$se" "$cpu" "$q" "${extra:-}" >&2
    settle "$pid"
}

# storm: login at cost 12 on 64 connections for DURATION+2 s; 1 s in, GET / for DURATION s.
storm() {
    local fa=$work/wrk/r$round-storm-login.txt fb=$work/wrk/r$round-storm-get.txt
    local t0 t1 pa pb rps p50 p99 req bad se to hwm q lreq
    t0=$(cpu_ticks "$authd_pid")
    start_sampler "$work/authd.sock" "$fb.recvq"
    BENCH_USERS="${storm_users[*]}" run_wrk "$fa" $((DURATION + 2)) "$bench/login.lua" "$api_base/auth/login"
    pa=$wrk_pid
    sleep 1
    run_wrk "$fb" "$DURATION" "$bench/get.lua" "$api_base/"
    pb=$wrk_pid
    wait_wrk "$pb" "$fb"
    wait_wrk "$pa" "$fa"
    alive "$authd_pid" || die "storm: authd died during the run (logs in $work)"
    t1=$(cpu_ticks "$authd_pid")
    stop_sampler "$fb.recvq"
    q=$recvq_max
    hwm=$(vmhwm_kib "$authd_pid")
    read -r rps p50 p99 lreq bad se to < <(parse_wrk "$fa")
    record round="$round" profile=storm-login rps="$rps" p50_ms="$p50" p99_ms="$p99" requests="$lreq" \
        non2xx="$bad" socket_errors="$se" timeouts="$to" cpu_us=null vmhwm_kib="$hwm" recvq_max="$q"
    printf '  %-16s %9.0f req/s  p50 %7.2f ms  p99 %8.2f ms  non-2xx %d (503 expected)  socket errors %d\n' \
        storm-login "$rps" "$p50" "$p99" "$bad" "$se" >&2
    read -r rps p50 p99 req bad se to < <(parse_wrk "$fb")
    # CPU over the whole storm, for the logins and the GETs together.
    local cpu
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v n=$((req + lreq)) 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }')
    record round="$round" profile=storm-get rps="$rps" p50_ms="$p50" p99_ms="$p99" requests="$req" \
        non2xx="$bad" socket_errors="$se" timeouts="$to" cpu_us="$cpu" vmhwm_kib="$hwm" recvq_max="$q"
    printf '  %-16s %9.0f req/s  p50 %7.2f ms  p99 %8.2f ms  non-2xx %d  socket errors %d  recv-q max %s\n' \
        storm-get "$rps" "$p50" "$p99" "$bad" "$se" "$q" >&2
    settle "$authd_pid"
}

# start_measuring WHAT: how busy the machine is without us (idle_busy_pct, with a
# warning naming WHAT), then the machine's and our own CPU counters from now on.
start_measuring() {
    local busy0 total0 busy1 total1
    read -r busy0 total0 < <(machine_ticks)
    sleep 1
    read -r busy1 total1 < <(machine_ticks)
    idle_busy_pct=$(( (busy1 - busy0) * 100 / (total1 - total0 > 0 ? total1 - total0 : 1) ))
    if (( idle_busy_pct > 10 )); then
        log "warning: the machine is already ${idle_busy_pct}% busy before $1"
    fi
    read -r run_busy0 run_total0 < <(machine_ticks)
    own_ticks >"$work/own0"
    own0=$(<"$work/own0")
    started=$SECONDS
}

# stop_measuring: other_load_pct, the share of the machine that processes other than
# ours used since start_measuring (call it after ours have stopped and been reaped).
stop_measuring() {
    local run_busy1 run_total1 own1
    read -r run_busy1 run_total1 < <(machine_ticks)
    own_ticks >"$work/own1"
    own1=$(<"$work/own1")
    other_load_pct=$(awk -v b=$((run_busy1 - run_busy0)) -v t=$((run_total1 - run_total0)) -v o=$((own1 - own0)) \
        'BEGIN { v = t > 0 ? (b - o) * 100 / t : 0; if (v < 0) v = 0; printf "%.1f", v }')
}

# --- the soak (SOAK=1) instead of the rounds: bench/soak.sh ends the script -------------
if [[ $SOAK == 1 ]]; then
    . "$bench/soak.sh"
fi

# --- the rounds -------------------------------------------------------------------------
want() { [[ -z ${BENCH_PROFILES:-} || " ${BENCH_PROFILES//,/ } " == *" $1 "* ]]; }
run_id=$(date +%s)-$$
login_users=() storm_users=()
# How busy the machine is without us, just before the rounds (after the build).
start_measuring "the rounds start; figures will be low and noisy"
log "DURATION=${DURATION}s ROUNDS=$ROUNDS WORKERS=$WORKERS KEEP_CONN=$KEEP_CONN KEEPALIVE=$KEEPALIVE REF_THREADS=$REF_THREADS MIX=$BENCH_MIX ports $port_authd/$port_ref/$port_static"
for (( round = 1; round <= ROUNDS; round++ )); do
    log "round $round/$ROUNDS: authd with BCRYPT_COST=$login_cost"
    start_stack "$login_cost"
    if (( round == 1 )); then
        for i in 1 2 3 4 5 6 7 8; do
            name=bench-$i-$run_id
            token=$(register "$name")
            login_users+=("$name")
        done
        export BENCH_TOKEN=$token BENCH_PASSWORD=$password BENCH_THREADS=$wrk_threads BENCH_MIX
        # Both the C responder and authd must answer this token with 200.
        [[ $(http_code -H "Authorization: Bearer $token" "$api_base/") == 200 ]] || die "authd refuses the bench token"
        [[ $(http_code -H "Authorization: Bearer $token" "http://127.0.0.1:$port_ref/") == 200 ]] \
            || die "the C responder refuses authd's token"
        # A different first signature character changes the first signature byte.
        sig=${token##*.}
        [[ ${sig:0:1} == A ]] && flip=B || flip=A
        tampered=${token%.*}.$flip${sig:1}
        [[ $(http_code -H "Authorization: Bearer $tampered" "http://127.0.0.1:$port_ref/") == 401 ]] \
            || die "the C responder accepts a tampered token"
        [[ $(http_code -H "Authorization: Bearer $tampered" "$api_base/") == 401 ]] \
            || die "authd accepts a tampered token"
    fi
    if want authd-refresh; then
        make_sessions $((pool_per_thread * wrk_threads)) "$work/sessions-refresh.txt" "${login_users[@]}"
    fi
    if want authd-mixed; then
        make_sessions $((pool_per_thread * wrk_threads)) "$work/sessions-mixed.txt" "${login_users[@]}"
    fi
    settle "$authd_pid"

    if want nginx-return200; then
        profile nginx-return200 "http://127.0.0.1:$port_static/" "$bench/get.lua" "" ""
    fi
    if want c-ref-get; then
        profile c-ref-get "http://127.0.0.1:$port_ref/" "$bench/get.lua" "$ref_pid" "$work/ref.sock"
    fi
    if want authd-get; then
        profile authd-get "$api_base/" "$bench/get.lua" "$authd_pid" "$work/authd.sock"
    fi
    if want authd-refresh; then
        BENCH_SESSIONS=$work/sessions-refresh.txt \
            profile authd-refresh "$api_base/auth/refresh-token" "$bench/refresh.lua" "$authd_pid" "$work/authd.sock"
    fi
    if want authd-mixed; then
        BENCH_SESSIONS=$work/sessions-mixed.txt BENCH_USERS="${login_users[*]}" \
            profile authd-mixed "$api_base/" "$bench/mixed.lua" "$authd_pid" "$work/authd.sock"
    fi
    if want authd-login; then
        BENCH_USERS="${login_users[*]}" \
            profile authd-login "$api_base/auth/login" "$bench/login.lua" "$authd_pid" "$work/authd.sock"
    fi
    if want bcrypt-raw; then
        read -r rate hashes secs nthreads < <("$out/bcrypt_rate" "$login_cost" "$bcrypt_seconds" "$ncpu")
        record round="$round" profile=bcrypt-raw rps="$rate" requests="$hashes" threads="$nthreads"
        printf '  %-16s %9.1f hashes/s at cost %d on %d threads\n' bcrypt-raw "$rate" "$login_cost" "$nthreads" >&2
    fi
    stop_stack

    if want authd-get-checked; then
        log "round $round/$ROUNDS: authd with ACCESS_TOKEN_SESSION_CHECK=true"
        start_stack "$login_cost" true
        [[ $(http_code -H "Authorization: Bearer $BENCH_TOKEN" "$api_base/") == 200 ]] \
            || die "authd with the session check refuses the bench token (its session ended?)"
        settle "$authd_pid"
        profile authd-get-checked "$api_base/" "$bench/get.lua" "$authd_pid" "$work/authd.sock"
        stop_stack
    fi

    want storm-get || continue
    log "round $round/$ROUNDS: authd with BCRYPT_COST=$storm_cost (login storm)"
    start_stack "$storm_cost"
    if (( round == 1 )); then
        for i in 1 2; do
            name=storm-$i-$run_id
            register "$name" >/dev/null
            storm_users+=("$name")
        done
    fi
    storm
    stop_stack
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
    --argjson ref_threads "$REF_THREADS" --arg keep_conn "$KEEP_CONN" --argjson keepalive "$KEEPALIVE" \
    --arg deploy_keep "$deploy_keep" --arg deploy_keepalive "$deploy_keepalive" --arg mix "$BENCH_MIX" \
    --argjson login_cost "$login_cost" --argjson storm_cost "$storm_cost" \
    --argjson elapsed "$elapsed" --argjson authd_log_errors "$authd_errors" \
    --argjson busy_before "$idle_busy_pct" --argjson other_load "$other_load_pct" \
    -f "$bench/report.jq" "$work/records.jsonl" >"$out/results.json"
jq -r -f "$bench/table.jq" "$out/results.json" | tee "$out/results.md"
log "results: bench/out/results.json, bench/out/results.md; raw wrk output and logs: bench/out/work/"
