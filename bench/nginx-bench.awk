# Patches the nginx.conf that scripts/nginx-conf.sh generated (production settings,
# local paths) for the benchmark:
#
#   - every `fastcgi_pass` gets `fastcgi_keep_conn KEEP_CONN;` right after it, and with
#     KEEP_CONN=on every FastCGI upstream gets `keepalive KEEPALIVE;` (default 32;
#     authd's and the reference's alike). Whatever deploy/nginx.conf says about
#     `keepalive` and `fastcgi_keep_conn` is replaced, so both upstreams are equal;
#   - `upstream ref` points at the C reference responder (REF_SOCKET);
#   - the production `server` block (the one with `fastcgi_pass`; the local stack's demo
#     application is a server block of its own, left as it is) is repeated twice: on
#     REF_LISTEN with `fastcgi_pass ref;` (everything else identical: its /app/ is the
#     same gated location, with the auth_request subrequest answered by the C
#     responder's verify mode), and on STATIC_LISTEN with `location /` answering
#     `return 200 '{"status":"ok"}';` and without the `auth_request` lines (nginx alone;
#     its /app/ is the same location, protect.conf included, with no subrequest).
#
#   KEEP_CONN=on|off [KEEPALIVE=32] REF_SOCKET=/abs/ref.sock REF_LISTEN=127.0.0.1:P1 \
#   STATIC_LISTEN=127.0.0.1:P2 awk -f bench/nginx-bench.awk generated.conf
#
# Braces are counted on non-comment lines; the quoted JSON bodies of `return` hold
# balanced braces, so they do not disturb the count.
function braces(line,   t, opens, closes) {
    if (line ~ /^[ \t]*#/) return 0
    t = line; opens = gsub(/\{/, "", t)
    t = line; closes = gsub(/\}/, "", t)
    return opens - closes
}
function indent(line) { match(line, /^[ \t]*/); return substr(line, 1, RLENGTH) }
function keep_line(line) { return indent(line) "fastcgi_keep_conn " keep ";" }

# Prints the buffered server block with a new listen line; mode "ref" swaps the
# upstream, mode "static" replaces `location / { ... }` by a fixed answer and drops
# the `auth_request` lines.
function emit_copy(mode, listen,   i, line, skipping, depth, listened) {
    skipping = 0; listened = 0
    for (i = 1; i <= nserver; i++) {
        line = server[i]
        if (skipping) {
            depth += braces(line)
            if (depth == 0) skipping = 0
            continue
        }
        if (line ~ /^[ \t]*listen[ \t]/) {
            if (!listened++) print indent(line) "listen " listen ";"
            continue
        }
        if (mode == "static" && line ~ /^[ \t]*location[ \t]+\/[ \t]*\{/) {
            print indent(line) "location / {"
            print indent(line) "    return 200 '{\"status\":\"ok\"}';"
            print indent(line) "}"
            skipping = 1; depth = braces(line); n_static++
            continue
        }
        if (mode == "static" && line ~ /^[ \t]*auth_request[ \t]/) { n_open++; continue }
        if (mode == "ref" && line ~ /^[ \t]*fastcgi_pass[ \t]+authd;/) {
            sub(/fastcgi_pass[ \t]+authd;/, "fastcgi_pass ref;", line)
            n_ref++
        }
        print line
    }
}

BEGIN {
    keep = ENVIRON["KEEP_CONN"]
    keepalive = ENVIRON["KEEPALIVE"] == "" ? 32 : ENVIRON["KEEPALIVE"]
    if (keepalive !~ /^[1-9][0-9]*$/) { print "nginx-bench.awk: KEEPALIVE must be a positive integer" > "/dev/stderr"; exit 2 }
    if (keep != "on" && keep != "off") { print "nginx-bench.awk: KEEP_CONN must be on or off" > "/dev/stderr"; exit 2 }
    if (ENVIRON["REF_SOCKET"] == "" || ENVIRON["REF_LISTEN"] == "" || ENVIRON["STATIC_LISTEN"] == "") {
        print "nginx-bench.awk: set REF_SOCKET, REF_LISTEN and STATIC_LISTEN" > "/dev/stderr"; exit 2
    }
    print "# Patched by bench/nginx-bench.awk: KEEP_CONN=" keep (keep == "on" ? " (keepalive " keepalive ")" : "") \
          ", reference servers on " \
          ENVIRON["REF_LISTEN"] " (C responder) and " ENVIRON["STATIC_LISTEN"] " (return 200)."
}

# upstream authd { ... }: add keepalive, then declare the reference's upstream.
/^[ \t]*upstream[ \t]+authd[ \t]*\{/ { in_upstream = 1; up_indent = indent($0); n_upstream++ }
in_upstream && /^[ \t]*keepalive[ \t]/ { n_dropped++; next }
in_upstream && /^[ \t]*\}/ {
    if (keep == "on") print up_indent "    keepalive " keepalive ";"
    print
    print ""
    print up_indent "upstream ref {"
    print up_indent "    server \"unix:" ENVIRON["REF_SOCKET"] "\";"
    if (keep == "on") print up_indent "    keepalive " keepalive ";"
    print up_indent "}"
    in_upstream = 0
    next
}

# A server block: buffered (with keep_conn after each fastcgi_pass), then printed; the
# one that passes to authd is the production block, and its copies follow it.
!in_server && /^[ \t]*server[ \t]*\{/ { in_server = 1; depth = 0; nserver = 0; passes = 0 }
in_server && /^[ \t]*fastcgi_keep_conn[ \t]/ { n_dropped++; next }
in_server {
    depth += braces($0)
    server[++nserver] = $0
    if ($0 ~ /^[ \t]*fastcgi_pass[ \t]/) {
        server[++nserver] = keep_line($0)
        passes++
    }
    if (depth == 0) {
        in_server = 0
        for (i = 1; i <= nserver; i++) print server[i]
        if (passes > 0) {
            n_server++; n_pass += passes
            print ""
            print indent($0) "# Reference: the C responder behind the same server settings."
            emit_copy("ref", ENVIRON["REF_LISTEN"])
            print ""
            print indent($0) "# Reference: nginx alone."
            emit_copy("static", ENVIRON["STATIC_LISTEN"])
        }
    }
    next
}

{ print }

END {
    if (n_upstream != 1 || n_server != 1 || n_pass < 1 || n_ref != n_pass || n_static != 1 || n_open < 1) {
        printf "nginx-bench.awk: unexpected shape (upstream authd %d, server with fastcgi_pass %d, fastcgi_pass %d, ref %d, static %d, auth_request %d)\n", \
            n_upstream, n_server, n_pass, n_ref, n_static, n_open > "/dev/stderr"
        exit 1
    }
}
