#!/usr/bin/env bash
# `make run`: the whole stack on this machine, in the foreground.
#
#   redis-server  project-local: unix socket var/redis.sock (mode 700), no TCP port,
#                 AOF on, data in var/redis/, log in var/redis/redis.log
#   authd         release build, FastCGI on var/authd.sock, logs to this terminal
#   nginx         config generated from deploy/nginx.conf into var/nginx/, on
#                 127.0.0.1:${HTTP_PORT:-8080}; errors to this terminal, JSON access
#                 log in var/nginx/logs/access.log
#
# Missing Debian packages are installed first (scripts/deps.sh; as root only).
# .env gets fresh development secrets when it does not exist. Whatever else you put
# in the environment (secrets, JWT_ISSUER, ACCESS_TOKEN_TTL, BCRYPT_COST, WORKERS, ...)
# reaches authd and wins over .env; REDIS_URL and FCGI_LISTEN are always the local ones.
#
# Ctrl-C or SIGTERM stops all three (TERM, then KILL after a timeout) and exits 0.
# If one of them dies, the others are stopped and the script exits 1.
#
# Environment for this script: HTTP_PORT (8080); AUTHD_BIN=path uses that binary
# instead of building (handy with another scratch path); NGINX_RATE_LIMIT=on applies
# deploy/nginx.conf's per-address `limit_req` (off by default, so that load tests and
# test suites from this one address are not throttled by nginx).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
var=$root/var
port=${HTTP_PORT:-8080}

log() { printf 'run-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
. "$root/scripts/proc.sh"  # alive, stop_one, wait_for

[[ $port =~ ^[0-9]+$ && $port -ge 1 && $port -le 65535 ]] || die "HTTP_PORT must be a port number, not '$port'"
if [[ $var == *[\"\\\$\;[:space:]]* ]]; then
    die "the project path '$root' contains a space or one of \" \\ \$ ;, which the generated configs cannot hold"
fi
# A unix socket path must fit in sun_path (108 bytes with the NUL).
if (( ${#var} + 11 > 107 )); then
    die "'$var' is too long for unix socket paths (max ~95 characters); move the checkout"
fi

# --- packages, build, secrets ------------------------------------------------------
bash scripts/deps.sh

bin=$(authd_binary) || die "the release build failed"
[[ -x $bin ]] || die "no executable authd at $bin"

nginx_bin=$(command -v nginx || true)
[[ -n $nginx_bin ]] || nginx_bin=/usr/sbin/nginx   # /usr/sbin is not on a user's PATH on Debian

mkdir -p "$var/redis" "$var/nginx"

# One stack per checkout: the lock stays held while this script runs.
exec 9>"$var/run.lock"
flock -n 9 || die "another 'make run' is already running in $root"

if [[ ! -e .env ]]; then
    access_secret=$("$bin" keygen)
    refresh_secret=$("$bin" keygen)
    for s in "$access_secret" "$refresh_secret"; do
        [[ $s =~ ^[A-Za-z0-9_-]{32,}$ ]] || die "'$bin keygen' printed something unexpected: '$s'"
    done
    [[ $access_secret != "$refresh_secret" ]] || die "'$bin keygen' printed the same secret twice"
    (
        umask 077
        {
            echo "# Development secrets written by scripts/run-local.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
            echo "# Not for production: there, use /etc/authd/authd.env (see docs/deployment.md)."
            echo "ACCESS_TOKEN_SECRET=$access_secret"
            echo "REFRESH_TOKEN_SECRET=$refresh_secret"
        } > .env.tmp
        mv .env.tmp .env
    )
    unset access_secret refresh_secret
    log "wrote .env with fresh development secrets"
fi

# Nothing of ours can be listening (we hold the lock): old sockets are leftovers.
rm -f "$var/redis.sock" "$var/authd.sock"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "something already listens on 127.0.0.1:$port (choose another with HTTP_PORT=...)"
fi

# --- process control ---------------------------------------------------------------
redis_pid='' authd_pid='' nginx_pid=''
read -r my_pgid </proc/$$/stat
my_pgid=${my_pgid##*) }
read -r _ _ my_pgid _ <<<"$my_pgid"


# nginx workers of ours that outlived their master (they do not exit when the master
# is killed): processes named nginx in our process group, once the master is gone.
nginx_leftovers() {
    local f stat comm pgid
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        comm=${stat#*(}
        comm=${comm%)*}
        [[ $comm == nginx ]] || continue
        stat=${stat##*) }
        read -r _ _ pgid _ <<<"$stat"
        if [[ $pgid == "$my_pgid" ]]; then
            f=${f#/proc/}
            echo "${f%/stat}"
        fi
    done
}


stopped=false
stop_all() {
    local pid
    $stopped && return 0
    stopped=true
    # Front to back, so requests in flight can finish.
    stop_one nginx "$nginx_pid" 5
    if [[ -n $nginx_pid ]]; then
        for pid in $(nginx_leftovers); do
            log "killing leftover nginx worker $pid"
            kill -KILL "$pid" 2>/dev/null || true
        done
    fi
    stop_one authd "$authd_pid" 15
    stop_one redis-server "$redis_pid" 10
    rm -f "$var/authd.sock"
}

finish() {
    local code=$1
    shift
    trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
    [[ $# -eq 0 ]] || log "$*"
    stop_all
    [[ $code -ne 0 ]] || log "stopped"
    exit "$code"
}

trap stop_all EXIT
trap 'echo >&2; finish 0 "stopping redis-server, authd and nginx"' INT TERM


redis_ready() { [[ $(redis-cli -s "$var/redis.sock" ping 2>/dev/null) == PONG ]]; }
http_ready() { [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/healthz") == 200 ]]; }

# --- redis-server ------------------------------------------------------------------
cat > "$var/redis.conf" <<EOF
# Generated by scripts/run-local.sh; changes are overwritten on the next run.
port 0
unixsocket "$var/redis.sock"
unixsocketperm 700
dir "$var/redis"
logfile "$var/redis/redis.log"
daemonize no
# Persistence: AOF with appendfsync always, the production settings (see that file).
include "$root/deploy/redis/authd.conf"
EOF
log "starting redis-server (unix:$var/redis.sock, data in var/redis)"
redis-server "$var/redis.conf" </dev/null 9>&- &
redis_pid=$!
if ! (wait_for redis-server "$redis_pid" 20 redis_ready); then
    tail -n 20 "$var/redis/redis.log" >&2 2>/dev/null || true
    exit 1
fi

# --- authd -------------------------------------------------------------------------
log "starting authd (FastCGI on $var/authd.sock)"
REDIS_URL="unix://$var/redis.sock" FCGI_LISTEN="$var/authd.sock" \
    "$bin" serve </dev/null 9>&- &
authd_pid=$!
wait_for authd "$authd_pid" 30 test -S "$var/authd.sock"

# --- nginx -------------------------------------------------------------------------
bash scripts/nginx-conf.sh "$var/nginx" "127.0.0.1:$port" "$var/authd.sock" > "$var/nginx/nginx.conf"
"$nginx_bin" -t -q -p "$var/nginx" -c "$var/nginx/nginx.conf" -g 'daemon off;'
log "starting nginx on 127.0.0.1:$port"
"$nginx_bin" -p "$var/nginx" -c "$var/nginx/nginx.conf" -g 'daemon off;' </dev/null 9>&- &
nginx_pid=$!
wait_for nginx "$nginx_pid" 20 http_ready

url="http://127.0.0.1:$port"
cat >&2 <<EOF

  authd is ready at $url   (Ctrl-C stops redis-server, authd and nginx)

    curl -s $url/healthz
    curl -s -X POST $url/auth/register -H 'Content-Type: application/json' \\
         -d '{"username":"demo-$RANDOM","password":"correct horse battery"}'
    curl -s $url/ -H "Authorization: Bearer \$ACCESS_TOKEN"

  The full walk-through (register, protected route, refresh, logout) is in README.md.
  Logs: authd and nginx errors here; var/nginx/logs/access.log; var/redis/redis.log

EOF

# --- supervise ---------------------------------------------------------------------
# `wait -n` returns when one of them exits, or at once for a signal (the trap runs).
while :; do
    status=0
    wait -n "$redis_pid" "$authd_pid" "$nginx_pid" || status=$?
    for name in redis-server authd nginx; do
        case $name in
            redis-server) pid=$redis_pid ;;
            authd) pid=$authd_pid ;;
            nginx) pid=$nginx_pid ;;
        esac
        if ! alive "$pid"; then
            finish 1 "$name exited (status $status); stopping the others"
        fi
    done
done
