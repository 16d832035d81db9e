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
# scripts/stack.sh starts and stops the three (var/ is its stack folder); what is this
# script's own: packages, .env, one run per checkout, and the foreground supervision.
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
. "$root/scripts/stack.sh"  # stack_* (redis-server, authd, nginx), alive, port_busy

[[ $port =~ ^[0-9]+$ && $port -ge 1 && $port -le 65535 ]] || die "HTTP_PORT must be a port number, not '$port'"
stack_init "$var"

# --- packages, build, secrets ------------------------------------------------------
bash scripts/deps.sh

bin=$(authd_binary "$root/.build") || exit 1

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

if port_busy "$port"; then
    die "something already listens on 127.0.0.1:$port (choose another with HTTP_PORT=...)"
fi

# --- process control ---------------------------------------------------------------
finish() {
    local code=$1
    shift
    trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
    [[ $# -eq 0 ]] || log "$*"
    stack_stop
    [[ $code -ne 0 ]] || log "stopped"
    exit "$code"
}

trap stack_stop EXIT
trap 'echo >&2; finish 0 "stopping redis-server, authd and nginx"' INT TERM

# --- the stack ---------------------------------------------------------------------
# Persistence: AOF with appendfsync always, the production settings (see that file).
log "starting redis-server (unix:$var/redis.sock, data in var/redis)"
stack_redis_start "include \"$root/deploy/redis/authd.conf\""

# authd runs in var/: the .env it reads is named.
log "starting authd (FastCGI on $var/authd.sock)"
stack_authd_start "$bin" - -- --env-file "$root/.env"

stack_nginx_conf "127.0.0.1:$port"
log "starting nginx on 127.0.0.1:$port"
stack_nginx_start - "http://127.0.0.1:$port/healthz"

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
    wait -n "$STACK_REDIS_PID" "$STACK_AUTHD_PID" "$STACK_NGINX_PID" || status=$?
    for name in redis-server authd nginx; do
        case $name in
            redis-server) pid=$STACK_REDIS_PID ;;
            authd) pid=$STACK_AUTHD_PID ;;
            nginx) pid=$STACK_NGINX_PID ;;
        esac
        if ! alive "$pid"; then
            finish 1 "$name exited (status $status); stopping the others"
        fi
    done
done
