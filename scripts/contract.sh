#!/usr/bin/env bash
# `make contract`: the HTTP contract (docs/openapi.yaml) tested with schemathesis against
# a stack of its own, through nginx, on loopback. Fails on any schemathesis failure.
#
#   bash scripts/contract.sh                 the whole run (about 1-3 minutes)
#   bash scripts/contract.sh --stack-only    start the stack, print its URL and a token,
#                                            wait for Ctrl-C (to run schemathesis by hand)
#
# What it does:
#   1. A Python venv in .venv-contract/ (gitignored) with schemathesis==$SCHEMATHESIS_VERSION
#      from PyPI, made once and reused while the version matches.
#   2. authd: $AUTHD_BIN, or a release build (`swift build -c release --static-swift-stdlib`,
#      scratch path $SWIFT_SCRATCH_PATH, default .build, as `make release`).
#   3. In var/contract/ (gitignored), started by scripts/stack.sh: redis-server on a unix
#      socket (no TCP, no persistence; log in var/contract/redis/); authd on a FastCGI socket with BCRYPT_COST=4 and the failed-login
#      limits off (LOGIN_*_MAX_FAILURES=0: the fuzzer logs in with wrong passwords all the
#      time); nginx with the config scripts/nginx-conf.sh derives from deploy/nginx.conf,
#      on 127.0.0.1 (first free port from 18490; CONTRACT_PORT to choose). NGINX_RATE_LIMIT
#      stays off unless set.
#   4. Registers the spec's example user (alice): the access token of that registration is
#      the bearer token schemathesis sends to the protected routes (it also sends them no
#      token and bad ones, and expects 401), and the spec's login example logs in for real.
#   5. schemathesis run docs/openapi.yaml through nginx (settings in
#      scripts/contract/schemathesis.toml, hooks in scripts/contract/hooks.py): the phases
#      examples, coverage (boundary values, wrong types, missing fields, content types,
#      methods a path does not take), fuzzing (positive and negative data), and stateful
#      (register/login -> refresh -> ... -> logout, me, logout-all along the spec's links,
#      with the tokens of each answer); every check schemathesis has but
#      object_level_authorization (authd has no per-object URLs); CONTRACT_MAX_EXAMPLES
#      (300) per operation; seed CONTRACT_SEED (fixed by default, so that runs are
#      repeatable; `random` for a fresh one). The JUnit report, a VCR cassette of every
#      request and answer, and the logs stay in var/contract/.
#   6. Stops everything it started (also on Ctrl-C or a failure) and prints a summary.
#
# Environment: AUTHD_BIN, SWIFT_SCRATCH_PATH, CONTRACT_PORT, CONTRACT_MAX_EXAMPLES,
# CONTRACT_SEED, CONTRACT_JWT_ALG (EdDSA: the JWKS then has keys to check; HS256 works
# too), PYTHON (python3), NGINX_RATE_LIMIT (off), SCHEMATHESIS_ARGS (extra arguments).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
work=$root/var/contract
venv=$root/.venv-contract
spec=$root/docs/openapi.yaml
config=$root/scripts/contract/schemathesis.toml
SCHEMATHESIS_VERSION=4.32.5

log() { printf 'contract: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
. "$root/scripts/stack.sh"  # stack_* (redis-server, authd, nginx), alive, free_ports
# shellcheck disable=SC2034  # read by wait_for in scripts/stack.sh
PROC_HINT=" (logs in $work)"

stack_only=false
case ${1:-} in
    '') ;;
    --stack-only) stack_only=true ;;
    *) echo "usage: $0 [--stack-only]" >&2; exit 2 ;;
esac

max_examples=${CONTRACT_MAX_EXAMPLES:-300}
seed=${CONTRACT_SEED:-20261126}
jwt_alg=${CONTRACT_JWT_ALG:-EdDSA}
python=${PYTHON:-python3}
[[ $max_examples =~ ^[1-9][0-9]*$ ]] || die "CONTRACT_MAX_EXAMPLES must be a positive integer"
[[ $seed == random || $seed =~ ^[0-9]+$ ]] || die "CONTRACT_SEED must be a number or 'random'"
[[ $jwt_alg == HS256 || $jwt_alg == EdDSA ]] || die "CONTRACT_JWT_ALG must be HS256 or EdDSA"

for tool in nginx redis-server redis-cli curl flock setsid "$python"; do
    command -v "$tool" >/dev/null || die "'$tool' not found: run 'make deps' (as root) first"
done
[[ -r $spec ]] || die "no $spec"
stack_init "$work"

exec 9>"$root/var/contract.lock"
flock -n 9 || die "another 'make contract' is running in $root"
started=$SECONDS

# --- schemathesis in a venv ----------------------------------------------------------
st=$venv/bin/schemathesis
if [[ $("$st" --version 2>/dev/null) != "schemathesis, version $SCHEMATHESIS_VERSION" ]]; then
    log "creating $venv with schemathesis==$SCHEMATHESIS_VERSION (pip, from PyPI)"
    "$python" -m venv --clear "$venv" \
        || die "'$python -m venv' failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
        || die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
    [[ $("$st" --version 2>/dev/null) == "schemathesis, version $SCHEMATHESIS_VERSION" ]] \
        || die "$st does not report version $SCHEMATHESIS_VERSION"
fi
setup_seconds=$((SECONDS - started))

# --- authd binary ----------------------------------------------------------------------
bin=$(authd_binary "${SWIFT_SCRATCH_PATH:-$root/.build}") || exit 1

# --- a free loopback port ----------------------------------------------------------------
if [[ -n ${CONTRACT_PORT:-} ]]; then
    if ! [[ $CONTRACT_PORT =~ ^[0-9]+$ ]] || (( CONTRACT_PORT < 1 || CONTRACT_PORT > 65535 )); then
        die "CONTRACT_PORT must be a port number"
    fi
    port=$(free_ports "$CONTRACT_PORT" 1 1 1) || die "127.0.0.1:$port is in use"
else
    port=$(free_ports 18490 1 100 1) || die "no free port in 18490-18589 (choose one with CONTRACT_PORT=...)"
fi
base=http://127.0.0.1:$port

# --- process control ---------------------------------------------------------------------
# The services run in sessions of their own (scripts/stack.sh), so that Ctrl-C reaches this
# script and schemathesis only; they are then stopped front to back.
st_pid=''
# shellcheck disable=SC2317  # called from the traps
stop_all() {
    [[ -z $st_pid ]] || stop_one schemathesis "$st_pid" 5
    st_pid=''
    stack_stop
}
trap stop_all EXIT
trap 'trap "" INT TERM; echo >&2; log "interrupted: stopping everything"; stop_all; exit 130' INT TERM

rm -rf "$work/nginx" "$work/redis" "$work/reports" "$work"/*.log "$work"/*.sock
mkdir -p "$work/reports"

# --- redis-server ------------------------------------------------------------------------
log "starting redis-server (unix:$work/redis.sock, no persistence)"
stack_redis_start 'save ""' 'appendonly no'

# --- authd -------------------------------------------------------------------------------
# Only these variables reach it, and it runs in $work, where there is no .env.
access_secret=$("$bin" keygen) || die "'$bin keygen' failed"
refresh_secret=$("$bin" keygen) || die "'$bin keygen' failed"
log "starting authd (FastCGI on $work/authd.sock, JWT_ALG=$jwt_alg, BCRYPT_COST=4, login limits off)"
stack_authd_start "$bin" "$work/authd.log" -i PATH="$PATH" \
    ACCESS_TOKEN_SECRET="$access_secret" REFRESH_TOKEN_SECRET="$refresh_secret" \
    JWT_ALG="$jwt_alg" JWT_ISSUER=authd-contract BCRYPT_COST=4 WORKERS=64 \
    LOGIN_USER_MAX_FAILURES=0 LOGIN_ADDRESS_MAX_FAILURES=0
unset access_secret refresh_secret

# --- nginx -------------------------------------------------------------------------------
stack_nginx_conf "127.0.0.1:$port"
log "starting nginx on $base"
stack_nginx_start "$work/nginx.log" "$base/readyz"

# --- the user whose access token schemathesis sends ----------------------------------
# The spec's example credentials, so that the examples phase logs in for real.
user=alice
password='correct horse battery'
body=$(printf '{"username":"%s","password":"%s"}' "$user" "$password")
status=$(curl -sS -o "$work/register.json" -w '%{http_code}' -X POST "$base/auth/register" \
    -H 'Content-Type: application/json' --data-binary "$body")
[[ $status == 201 ]] || die "registering $user answered $status: $(cat "$work/register.json")"
token=$(sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p' "$work/register.json")
[[ -n $token ]] || die "no access token in $(cat "$work/register.json")"

if $stack_only; then
    cat >&2 <<EOF

  The contract stack is up at $base (Ctrl-C stops it). Logs in $work.
  User $user / '$password'; an access token (valid ACCESS_TOKEN_TTL, 1 h):

    export CONTRACT_TOKEN=$token
    CONTRACT_TOKEN=\$CONTRACT_TOKEN $st run --config-file $config --url $base $spec

EOF
    while alive "$STACK_NGINX_PID" && alive "$STACK_AUTHD_PID" && alive "$STACK_REDIS_PID"; do sleep 1; done
    die "a service exited"
fi

# --- schemathesis ------------------------------------------------------------------------
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
checks+=,negative_data_rejection,positive_data_acceptance,missing_required_header
checks+=,unsupported_method,allow_header_conformance,ignored_auth
checks+=,use_after_free,ensure_resource_availability
phases=examples,coverage,fuzzing,stateful
seed_args=()
[[ $seed == random ]] || seed_args=(--seed "$seed")
# shellcheck disable=SC2206  # SCHEMATHESIS_ARGS is split on purpose
extra=(${SCHEMATHESIS_ARGS:-})
junit=$work/reports/junit.xml
log "schemathesis $SCHEMATHESIS_VERSION against $base ($max_examples examples per operation, seed $seed)"
run_started=$SECONDS
set +e
# In $work: schemathesis and Hypothesis keep their state folders in the current directory.
(
    cd "$work"
    exec env CONTRACT_TOKEN="$token" SCHEMATHESIS_HOOKS="$root/scripts/contract/hooks.py" \
        "$st" --config-file "$config" --no-color run "$spec" \
        --url "$base" \
        --phases "$phases" \
        --checks "$checks" \
        --max-examples "$max_examples" \
        "${seed_args[@]}" \
        --report junit,vcr --report-dir "$work/reports" \
        --report-junit-path "$junit" --report-vcr-path "$work/reports/cassette.yaml" \
        "${extra[@]}"
) </dev/null >"$work/schemathesis.log" 2>&1 &
st_pid=$!
# Shown as it runs; tail ends by itself once schemathesis has exited and all is printed.
tail -n +1 -f --pid="$st_pid" "$work/schemathesis.log" &
tail_pid=$!
wait "$st_pid"
status=$?
st_pid=''
wait "$tail_pid"
set -e
run_seconds=$((SECONDS - run_started))

# --- summary -----------------------------------------------------------------------------
junit_attr() { sed -n "s/.*<testsuites[^>]* $1=\"\([0-9]*\)\".*/\1/p" "$junit" 2>/dev/null | head -n 1; }
tests=$(junit_attr tests) failures=$(junit_attr failures) errors=$(junit_attr errors)
tests=${tests:-0} failures=${failures:-0} errors=${errors:-0}
cases=$(grep -A1 '^Test cases:' "$work/schemathesis.log" | tail -n 1 | sed 's/^ *//')
operations=$(grep -E '^ *Tested: [0-9]+' "$work/schemathesis.log" | head -n 1 | sed 's/^ *Tested: //')
# authd logs JSON lines (LOG_FORMAT=json, the default) or text.
authd_errors=$(grep -c -E '"level":"(error|critical)"|^[^{].* (error|critical) ' "$work/authd.log" || true)
echo
echo "== contract summary"
echo "spec:       docs/openapi.yaml, through nginx at $base (nginx -> authd -> redis)"
echo "tool:       schemathesis $SCHEMATHESIS_VERSION, seed $seed, $max_examples examples per operation"
echo "phases:     $phases"
echo "checks:     ${checks//,/, }"
echo "operations: ${operations:-?} tested (every route, GET routes also as HEAD), plus the stateful scenarios"
echo "test cases: ${cases:-?}"
echo "authd log:  $authd_errors error lines ($work/authd.log)"
echo "time:       ${run_seconds}s schemathesis, $((SECONDS - started))s in all (venv ${setup_seconds}s)"
echo "reports:    $junit, $work/reports/cassette.yaml (every request and answer)"
if (( status == 0 && failures == 0 && errors == 0 )); then
    echo "result:     no failures"
else
    echo "result:     FAILED: schemathesis exit status $status (see above, and $work/schemathesis.log)"
    (( status != 0 )) || status=1
fi
# One line per test of the JUnit report (an operation, or the stateful run).
echo "contract: $((tests - failures - errors)) passed, $((failures + errors)) failed"
exit "$status"
