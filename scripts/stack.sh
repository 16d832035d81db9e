# shellcheck shell=bash
# The local stack: redis-server, authd and nginx in one folder, on unix sockets and a
# loopback port, and the process helpers around it. Sourced (not run) by
# scripts/run-local.sh (`make run`), scripts/contract.sh (`make contract`) and
# bench/run.sh (`make bench`, `make soak`); each of them keeps only what is its own:
# run-local the .env, its lock and the foreground supervision; contract schemathesis;
# the bench the C reference responder, its nginx additions and the profiles.
# (The Swift test harness, Tests/IntegrationTests/Support/Stack.swift, starts the same
# three itself: its tests kill, pause and restart them one by one.)
#
# The caller defines log and die (messages to stderr; die exits) and root (the
# checkout). PROC_HINT, if set, is appended to start-up failures (" (logs in DIR)").
# Sourcing adds /usr/sbin to PATH (Debian's nginx is there; a user's PATH lacks it).
#
# A stack folder DIR (stack_init) holds:
#   redis.conf     redis-server's configuration, generated on every start
#   redis.sock     its only listener (no TCP port), mode 700
#   redis/         its data folder and redis.log
#   authd.sock     authd's FastCGI socket
#   nginx/         nginx.conf (deploy/nginx.conf rewritten by scripts/nginx-conf.sh),
#                  the pid file, logs/ and tmp/
# Each service runs in a session of its own (setsid, which execs in place here: $! is
# its pid), with stdin from /dev/null and fd 9 (the callers' lock) closed: a Ctrl-C in
# the terminal reaches the calling script and its clients only, and the script then
# stops the services front to back (stack_stop), so that requests in flight can finish.
#
# Functions; the state is in STACK_DIR and the STACK_*_PID variables (empty: not running).
#   alive PID                          true while PID runs (not a zombie)
#   stop_one NAME PID SECONDS          SIGTERM, SIGKILL after SECONDS; reaps it
#   reap PID                           collects an exited child's status
#   wait_for NAME PID SECONDS CMD...   until CMD succeeds; dies if NAME exits or times out
#   authd_binary SCRATCH               prints the authd to run ($AUTHD_BIN, or a build)
#   port_busy PORT                     something accepts on 127.0.0.1:PORT
#   free_ports FIRST STEP TRIES WIDTH  the first base of WIDTH free loopback ports
#   stack_init DIR                     checks DIR and makes it the stack's folder
#   stack_redis_start [LINE]...        redis-server; LINEs end its config
#   stack_authd_start BIN LOG [ENV_ARG]... [-- SERVE_ARG]...
#   stack_authd_stop
#   stack_nginx_conf LISTEN [FILTER]...  nginx.conf for LISTEN, checked with nginx -t
#   stack_nginx_start LOG READY_URL
#   stack_nginx_stop                   the master, then any worker it left behind
#   stack_stop                         nginx, authd, redis-server (what runs of them)

case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin ;; esac
STACK_DIR='' STACK_REDIS_PID='' STACK_AUTHD_PID='' STACK_NGINX_PID='' STACK_NGINX_WORKERS=''

# --- processes -------------------------------------------------------------------------

# True while $1 is running (an exited child of ours stays a zombie until reaped).
alive() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# stop_one NAME PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL; reap it.
stop_one() {
    local name=$1 pid=$2 timeout=$3 i=0
    [[ -n $pid ]] || return 0
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        while alive "$pid" && (( i < timeout * 10 )); do
            sleep 0.1
            i=$((i + 1))
        done
        if alive "$pid"; then
            log "$name (pid $pid) did not stop within ${timeout}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    reap "$pid"
    return 0
}

# reap PID: collects the exit status of our child PID, if there is one left to collect: a
# pid with no /proc entry (already reaped) is skipped. (Once, a bench interrupted during
# wrk hung in its exit trap: `wait` on a background pid blocked in wait4 with no such
# child left, while the services still ran.)
reap() {
    [[ ! -e /proc/$1 ]] || wait "$1" 2>/dev/null || true
}

# wait_for NAME PID SECONDS COMMAND...: until COMMAND succeeds; fail if NAME exits.
wait_for() {
    local name=$1 pid=$2 timeout=$3 i=0
    shift 3
    until "$@" >/dev/null 2>&1; do
        alive "$pid" || die "$name exited during start-up${PROC_HINT:-}"
        (( i < timeout * 10 )) || die "$name not ready after ${timeout}s${PROC_HINT:-}"
        sleep 0.1
        i=$((i + 1))
    done
}

# session_pids SID: the processes of session SID (for nginx: its master and workers).
session_pids() {
    local f stat sid
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        stat=${stat##*) }
        read -r _ _ _ sid _ <<<"$stat"   # state ppid pgrp session
        [[ $sid == "$1" ]] || continue
        f=${f#/proc/}
        echo "${f%/stat}"
    done
}

# authd_binary SCRATCH: prints the absolute path of the authd to run: $AUTHD_BIN, or the
# binary of a static release build made now in the scratch folder SCRATCH ($root/.build
# as `make release`; build output goes to stderr). Fails, saying why, when there is none.
# shellcheck disable=SC2154  # root is the caller's
authd_binary() {
    local scratch=$1 how='swift build -c release --static-swift-stdlib' bin
    if [[ -n ${AUTHD_BIN:-} ]]; then
        if [[ ! -f $AUTHD_BIN || ! -x $AUTHD_BIN ]]; then
            log "error: AUTHD_BIN=$AUTHD_BIN is not an executable file"
            return 1
        fi
        # Absolute: authd runs in the stack's folder.
        bin=$(cd "$(dirname "$AUTHD_BIN")" && pwd)/$(basename "$AUTHD_BIN")
        log "using AUTHD_BIN=$bin (not building)"
        echo "$bin"
        return 0
    fi
    [[ $scratch == "$root/.build" ]] || how+=" --scratch-path $scratch"
    log "building authd ($how)"
    if ! swift build -c release --static-swift-stdlib --scratch-path "$scratch" >&2; then
        log "error: the release build failed"
        return 1
    fi
    if [[ ! -x $scratch/release/authd ]]; then
        log "error: no executable authd at $scratch/release/authd"
        return 1
    fi
    echo "$(cd "$scratch/release" && pwd)/authd"
}

# --- loopback ports --------------------------------------------------------------------

# port_busy PORT: true when something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports FIRST STEP TRIES WIDTH: prints the first BASE of FIRST, FIRST+STEP, ...
# (TRIES of them) for which 127.0.0.1's ports BASE to BASE+WIDTH-1 are all free. When
# there is none, prints the last busy port it found and fails.
free_ports() {
    local base=$1 step=$2 tries=$3 width=$4 try p busy=''
    for (( try = 0; try < tries; try++, base += step )); do
        busy=''
        for (( p = base; p < base + width; p++ )); do
            if port_busy "$p"; then busy=$p; break; fi
        done
        if [[ -z $busy ]]; then
            echo "$base"
            return 0
        fi
    done
    echo "$busy"
    return 1
}

# --- the stack -------------------------------------------------------------------------

# stack_init DIR: DIR (absolute; created) becomes the stack's folder. It will hold unix
# sockets (at most 107 bytes of path) and is written into the generated configs in
# double quotes: what would break either is refused.
stack_init() {
    [[ $1 == /* ]] || die "the stack folder '$1' is not an absolute path"
    (( ${#1} + 11 <= 107 )) || die "'$1' is too long for unix socket paths (at most 96 characters); move the checkout"
    if [[ $1 == *[\"\\\$\;[:space:]]* ]]; then
        die "the path '$1' contains a space or one of \" \\ \$ ;, which the generated configs cannot hold"
    fi
    mkdir -p "$1"
    STACK_DIR=$1
}

# stack_redis_start [LINE]...: redis-server on STACK_DIR/redis.sock, data and log in
# STACK_DIR/redis/, from a generated STACK_DIR/redis.conf that ends with the LINEs (e.g.
# `save ""` and `appendonly no`, or the `include` of deploy/redis/authd.conf). Sets
# STACK_REDIS_PID and returns once it answers PING; otherwise shows the end of its log
# and exits.
stack_redis_start() {
    local dir=$STACK_DIR
    mkdir -p "$dir/redis"
    rm -f "$dir/redis.sock"
    {
        echo "# Generated by scripts/stack.sh for $0; overwritten on every start."
        echo "port 0"
        echo "unixsocket \"$dir/redis.sock\""
        echo "unixsocketperm 700"
        echo "dir \"$dir/redis\""
        echo "logfile \"$dir/redis/redis.log\""
        echo "daemonize no"
        (( $# == 0 )) || printf '%s\n' "$@"
    } >"$dir/redis.conf"
    setsid redis-server "$dir/redis.conf" </dev/null 9>&- &
    STACK_REDIS_PID=$!
    if ! (wait_for redis-server "$STACK_REDIS_PID" 20 stack_redis_ping); then
        tail -n 20 "$dir/redis/redis.log" >&2 2>/dev/null || true
        exit 1
    fi
}
stack_redis_ping() { [[ $(redis-cli -s "$STACK_DIR/redis.sock" ping 2>/dev/null) == PONG ]]; }

# stack_authd_start BIN LOG [ENV_ARG]... [-- SERVE_ARG]...: `BIN serve SERVE_ARG...` in
# STACK_DIR, on a fresh STACK_DIR/authd.sock, against the stack's redis-server. It runs
# under `env ENV_ARG... REDIS_URL=... FCGI_LISTEN=...`: this script's environment plus
# the NAME=VALUE ENV_ARGs, or only those when `-i` comes first (e.g. `-i PATH=$PATH
# NAME=VALUE...`). Its stdout and stderr are appended to LOG ("-": this script's). Sets
# STACK_AUTHD_PID and returns once the socket exists.
stack_authd_start() {
    local bin=$1 logfile=$2 env_args=() serve_args=()
    shift 2
    while (( $# )) && [[ $1 != -- ]]; do
        env_args+=("$1")
        shift
    done
    if (( $# )); then
        shift
        serve_args=("$@")
    fi
    rm -f "$STACK_DIR/authd.sock"  # a leftover would look like readiness
    (
        cd "$STACK_DIR" || exit 1
        [[ $logfile == - ]] || exec >>"$logfile" 2>&1
        exec setsid env "${env_args[@]}" \
            REDIS_URL="unix://$STACK_DIR/redis.sock" FCGI_LISTEN="$STACK_DIR/authd.sock" \
            "$bin" serve "${serve_args[@]}"
    ) </dev/null 9>&- &
    STACK_AUTHD_PID=$!
    wait_for authd "$STACK_AUTHD_PID" 60 test -S "$STACK_DIR/authd.sock"
}

stack_authd_stop() {
    stop_one authd "$STACK_AUTHD_PID" 20
    STACK_AUTHD_PID=''
    [[ -z $STACK_DIR ]] || rm -f "$STACK_DIR/authd.sock"
}

# stack_nginx_conf LISTEN [FILTER]...: STACK_DIR/nginx/nginx.conf, derived from
# deploy/nginx.conf by scripts/nginx-conf.sh (whose NGINX_* settings apply): nginx on
# LISTEN in front of STACK_DIR/authd.sock. With a FILTER command (e.g. `awk -f FILE`),
# nginx-conf.sh's output is kept in nginx/generated.conf and the config is what FILTER
# prints when given that file as its last argument. Then checked with `nginx -t`.
stack_nginx_conf() {
    local listen=$1 conf=$STACK_DIR/nginx/nginx.conf generated
    shift
    generated=$conf
    (( $# == 0 )) || generated=$STACK_DIR/nginx/generated.conf
    mkdir -p "$STACK_DIR/nginx"
    bash "$root/scripts/nginx-conf.sh" "$STACK_DIR/nginx" "$listen" "$STACK_DIR/authd.sock" >"$generated"
    (( $# == 0 )) || "$@" "$generated" >"$conf"
    nginx -t -q -p "$STACK_DIR/nginx" -c "$conf" -g 'daemon off;' || die "nginx -t failed on $conf"
}

# stack_nginx_start LOG READY_URL: nginx (not daemonized) with STACK_DIR/nginx/nginx.conf,
# its errors appended to LOG ("-": this script's stderr). Returns once READY_URL answers
# 200; sets STACK_NGINX_PID and STACK_NGINX_WORKERS (the pids of its workers).
stack_nginx_start() {
    local logfile=$1 url=$2
    (
        [[ $logfile == - ]] || exec 2>>"$logfile"
        exec setsid nginx -p "$STACK_DIR/nginx" -c "$STACK_DIR/nginx/nginx.conf" -g 'daemon off;'
    ) </dev/null 9>&- &
    STACK_NGINX_PID=$!
    wait_for nginx "$STACK_NGINX_PID" 20 http_ok "$url"
    # shellcheck disable=SC2034  # for the callers (the bench counts their CPU time)
    STACK_NGINX_WORKERS=$(cat /proc/"$STACK_NGINX_PID"/task/*/children 2>/dev/null || true)
}
http_ok() { [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1") == 200 ]]; }

# stack_nginx_stop: stops nginx's master, then kills what is left of its session: workers
# do not exit when the master is killed (after its timeout, or before, by someone else).
stack_nginx_stop() {
    local master=$STACK_NGINX_PID pid
    [[ -n $master ]] || return 0
    stop_one nginx "$master" 10
    for pid in $(session_pids "$master"); do
        log "killing leftover nginx worker $pid"
        kill -KILL "$pid" 2>/dev/null || true
    done
    # shellcheck disable=SC2034  # for the callers
    STACK_NGINX_PID='' STACK_NGINX_WORKERS=''
}

# stack_stop: nginx, authd, redis-server, front to back (nothing is left waiting on a
# peer that is gone); those not running are skipped, so it can run twice.
stack_stop() {
    stack_nginx_stop
    stack_authd_stop
    stop_one redis-server "$STACK_REDIS_PID" 10
    STACK_REDIS_PID=''
    [[ -z $STACK_DIR ]] || rm -f "$STACK_DIR/redis.sock"
}
