# shellcheck shell=bash disable=SC2154,SC2034  # state shared with bench/run.sh, both ways
# Helpers of bench/run.sh (`make bench`) and bench/soak.sh (`make soak`), sourced, not
# run: the /proc accounting (CPU ticks of a process, of nginx's workers, of the machine
# and of our own processes; peak RSS; settling), the accept-queue sampler, wrk (start,
# wait, parse its output), one measured wrk run (`profile`), the records that
# bench/report.jq reads, and the API calls that make users and sessions.
#
# They read bench/run.sh's settings and state: work, clk_tck, wrk_threads, wrk_conns,
# DURATION, round, api_base, password, login_cost, STACK_NGINX_WORKERS
# (scripts/stack.sh), and log/die.

bg_pids=()          # wrk runs and samplers in flight (forgotten once reaped)
forget() {
    local p keep=()
    for p in "${bg_pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    bg_pids=("${keep[@]}")
}
# stop_background: ends the wrk runs and samplers in flight, and reaps them.
stop_background() {
    local pid
    rm -f "$sampler_flag"
    for pid in "${bg_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${bg_pids[@]}"; do
        reap "$pid"
    done
    bg_pids=()
}

# --- /proc accounting -----------------------------------------------------------------

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
    for pid in $STACK_NGINX_WORKERS; do sum=$(( sum + $(cpu_ticks "$pid") )); done
    echo "$sum"
}
vmhwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# per_request TICKS REQUESTS: CPU microseconds a request ("0.00" without requests).
per_request() {
    awk -v t="$1" -v hz="$clk_tck" -v n="$2" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }'
}

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

# Accept-queue length of a listening unix socket, sampled every 0.2 s while the flag
# file exists: connections nginx opened that no worker thread has accepted yet.
sampler_flag=$work/sampling
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

# --- wrk --------------------------------------------------------------------------------

# run_wrk OUTFILE SECONDS SCRIPT URL [NAME=VALUE]...: wrk in the background, with the
# NAME=VALUEs in its environment (for the Lua script); sets wrk_pid.
run_wrk() {
    local file=$1 seconds=$2 script=$3 url=$4
    shift 4
    env "$@" wrk -t"$wrk_threads" -c"$wrk_conns" -d"${seconds}s" --timeout 10s --latency -s "$script" "$url" \
        >"$file" 2>&1 </dev/null 9>&- &
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

# profile NAME URL SCRIPT APP_PID SOCKET [NAME=VALUE]...: one wrk run of DURATION s (the
# NAME=VALUEs in its environment), with the app's CPU time, peak RSS (before and after)
# and accept-queue samples around it, recorded and printed.
profile() {
    local name=$1 url=$2 script=$3 pid=$4 sock=$5
    local file=$work/wrk/r$round-$name.txt t0 t1 n0 n1 rps p50 p99 req bad se to cpu ncpu_us hwm hwm0=null q extra
    shift 5
    [[ -z $pid ]] || hwm0=$(vmhwm_kib "$pid")
    t0=$(cpu_ticks "$pid") n0=$(nginx_ticks)
    start_sampler "$sock" "$file.recvq"
    run_wrk "$file" "$DURATION" "$script" "$url" "$@"
    wait_wrk "$wrk_pid" "$file"
    [[ -z $pid ]] || alive "$pid" || die "$name: pid $pid died during the run (logs in $work)"
    grep '^BENCH-ERROR' "$file" >&2 || true
    t1=$(cpu_ticks "$pid") n1=$(nginx_ticks)
    stop_sampler "$file.recvq"
    q=$recvq_max
    read -r rps p50 p99 req bad se to < <(parse_wrk "$file")
    cpu=null hwm=null
    if [[ -n $pid ]]; then
        cpu=$(per_request $((t1 - t0)) "$req")
        hwm=$(vmhwm_kib "$pid")
    fi
    ncpu_us=$(per_request $((n1 - n0)) "$req")
    extra=$(grep '^BENCH ' "$file" | cut -d' ' -f3- || true)
    record round="$round" profile="$name" rps="$rps" p50_ms="$p50" p99_ms="$p99" requests="$req" \
        non2xx="$bad" socket_errors="$se" timeouts="$to" cpu_us="$cpu" nginx_cpu_us="$ncpu_us" \
        vmhwm_kib="$hwm" vmhwm_before_kib="$hwm0" recvq_max="$q" conns="$wrk_conns" lua="${extra:-}"
    printf '  %-16s %9.0f req/s  p50 %7.2f ms  p99 %8.2f ms  non-2xx %d  socket errors %d  cpu %s us/req  recv-q max %s %s\n' \
        "$name" "$rps" "$p50" "$p99" "$bad" "$se" "$cpu" "$q" "${extra:-}" >&2
    settle "$pid"
}

# --- users and sessions -----------------------------------------------------------------

http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" || true; }

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

# register_users ARRAY PREFIX N: registers the users PREFIX-1-$run_id ... PREFIX-N-$run_id
# and adds their names to the array named ARRAY; last_token is the last one's access token.
register_users() {
    local -n names=$1
    local i
    for (( i = 1; i <= $3; i++ )); do
        last_token=$(register "$2-$i-$run_id")
        names+=("$2-$i-$run_id")
    done
}

# use_token TOKEN: the access token (and the rest) the Lua scripts read, once authd has
# answered it with 200.
use_token() {
    export BENCH_TOKEN=$1 BENCH_PASSWORD=$password BENCH_THREADS=$wrk_threads BENCH_MIX
    [[ $(http_code -H "Authorization: Bearer $1" "$api_base/") == 200 ]] || die "authd refuses the bench token"
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
