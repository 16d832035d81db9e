# shellcheck shell=bash
# Process helpers shared by scripts/run-local.sh, scripts/contract.sh and bench/run.sh
# (sourced, not run).
# The caller defines log, die and root (the checkout). PROC_HINT, if set, is appended
# to start-up failures (e.g. " (logs in DIR)").

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
    wait "$pid" 2>/dev/null || true
    return 0
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

# authd_binary: prints the authd to run: $AUTHD_BIN as given, or the binary of a static
# release build made now (build output goes to stderr).
# shellcheck disable=SC2154  # root is the caller's
authd_binary() {
    if [[ -n ${AUTHD_BIN:-} ]]; then
        log "using AUTHD_BIN=$AUTHD_BIN (not building)"
        echo "$AUTHD_BIN"
    else
        log "building authd (swift build -c release --static-swift-stdlib)"
        swift build -c release --static-swift-stdlib >&2 || return 1
        echo "$root/.build/release/authd"
    fi
}

# check_work_dir DIR: DIR will hold unix sockets (at most 107 bytes of path) and be
# written into nginx/redis configs in double quotes: refuse what would break either.
check_work_dir() {
    (( ${#1} + 12 <= 107 )) || die "'$1' is too long for unix socket paths; move the checkout"
    if [[ $1 == *[\"\\\$\;[:space:]]* ]]; then
        die "the project path '$root' contains a space or one of \" \\ \$ ;"
    fi
}

# stop_nginx_tree PID "WORKER_PIDS": stops nginx's master, then kills any of its workers
# still alive (a master killed after its timeout leaves them running).
stop_nginx_tree() {
    local pid
    stop_one nginx "$1" 10
    for pid in $2; do
        if alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == nginx ]]; then
            log "killing leftover nginx worker $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}
