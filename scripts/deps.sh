#!/usr/bin/env bash
# Install the Debian packages this project needs, if any is missing.
#
#   bash scripts/deps.sh           install what is missing (as root), else do nothing
#   bash scripts/deps.sh --check   only report; exit 1 when something is missing
#
# As root: one `apt-get update`, then `apt-get install` of the missing packages,
# non-interactively (works in CI with no stdin). Not root: prints the exact command
# to run and exits 1. The Swift toolchain is not a Debian package: we only check it.
set -euo pipefail

# One entry per need. "a|b|c": install a; any of a, b, c already installed will do
# (on Debian 12 nginx-light is a transitional package for nginx).
needs=(
    libfcgi-dev             # FastCGI (libfcgi) headers, for CFastCGI
    libhiredis-dev          # Redis client library, for CHiredis
    libssl-dev              # OpenSSL 3 libcrypto, for CLibCrypto
    libcrypt-dev            # libxcrypt (bcrypt), for CXCrypt
    'pkg-config|pkgconf'     # SwiftPM resolves fcgi/libcrypto/libxcrypt through .pc files
    redis-server            # also brings redis-cli (redis-tools)
    'nginx-light|nginx|nginx-core|nginx-full|nginx-extras'
    curl                    # make run health check, README walk-through
    jq                      # README walk-through
    wrk                     # load tests
    python3-jwt             # PyJWT: the test that a token verifies from the JWKS alone
    python3-cryptography    # ...with PyJWT's EdDSA support
    python3-venv            # make contract: schemathesis from PyPI in .venv-contract/
    systemd                 # systemd-analyze, for the test of deploy/systemd (not started)
    make
    git                     # SwiftPM fetches package dependencies with git
    ca-certificates
)

check_only=false
[[ ${1:-} == --check ]] && check_only=true

installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ $status == "install ok installed" ]]
}

missing=()
for need in "${needs[@]}"; do
    IFS='|' read -r -a alternatives <<<"$need"
    found=false
    for pkg in "${alternatives[@]}"; do
        if installed "$pkg"; then found=true; break; fi
    done
    $found || missing+=("${alternatives[0]}")
done

if ! command -v swift >/dev/null 2>&1; then
    echo "deps.sh: warning: no 'swift' on PATH; install the Swift 6 toolchain from https://www.swift.org/install/linux/" >&2
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps.sh: all Debian packages present"
    exit 0
fi

install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if $check_only; then
    echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
    echo "deps.sh: run this as root, then try again:" >&2
    echo "    sudo apt-get update && sudo ${install_cmd[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps.sh: installing ${missing[*]}"
apt-get update -q
"${install_cmd[@]}" </dev/null
