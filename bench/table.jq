# Input: bench/out/results.json. Output: the Markdown table of docs/benchmark.md.
def n($d): if . == null then "–" else (. * pow(10; $d) | round / pow(10; $d) | tostring) end;
def int: if . == null then "–" else (round | tostring) end;
def mib: if . == null then "–" else (. / 1024 * 10 | round / 10 | tostring) end;
def x: if . == null then "–" elif . < 0.1 then ((. * 1000 | round / 1000 | tostring) + "×") else ((. * 100 | round / 100 | tostring) + "×") end;
def us: if . == null then "–" elif . >= 0 then "+" + n(1) else n(1) end;
. as $r
| def s($p): first($r.summary[] | select(.profile == $p)) // null;
  {"nginx-return200": "nginx `return 200` alone (reference)",
   "c-ref-get": "C libfcgi responder, `GET /` (reference)",
   "authd-get": "authd `GET /`",
   "c-ref-get-c1": "C responder `GET /`, one connection",
   "authd-get-c1": "authd `GET /`, one connection",
   "app-open": "demo app `/app/`, no auth_request (reference)",
   "c-gated": "`/app/`, auth_request → C responder verify (reference)",
   "authd-gated": "`/app/`, auth_request → authd verify",
   "c-gated-c1": "`/app/` → C responder verify, one connection",
   "authd-gated-c1": "`/app/` → authd verify, one connection",
   "authd-get-checked": "authd `GET /`, ACCESS_TOKEN_SESSION_CHECK=true",
   "authd-refresh": "authd `POST /auth/refresh-token`",
   "authd-login": "authd `POST /auth/login` (cost \($r.settings.login_bcrypt_cost))",
   "authd-mixed": "authd mixed \($r.settings.mix_get_refresh_login | gsub(","; "/")) (GET/refresh/login)",
   "storm-get": "authd `GET /` during a login storm",
   "storm-login": "…the storm: `POST /auth/login` (cost \($r.settings.storm_bcrypt_cost))",
   "bcrypt-raw": "raw bcrypt cost \($r.settings.login_bcrypt_cost), \($r.machine.nproc) threads, hashes/s"} as $names
| def target($p; $v):
    if $p == "authd-get" then "\($v.target_ratio | x) C (≥ 1.0×); CPU C \($v.cpu_minus_c | us) µs (≤ +3); p99 \($v.p99_ratio | x) C"
    elif $p == "authd-get-c1" then "p50 \($v.p50_ratio | x) C (\($v.p50_minus_c_us | us) µs); CPU C \($v.cpu_minus_c | us) µs"
    elif $p == "c-gated" then "\($v.vs_open | x) app-open"
    elif $p == "authd-gated" then "\($v.target_ratio | x) C-gated (≥ 1.0×); CPU C \($v.cpu_minus_c | us) µs (≤ +3); p99 \($v.p99_ratio | x) C (≤ 1.5×); RSS \($v.rss_delta_kib | if . == null then null else . / 1024 end | us) MiB (unchanged); \($v.vs_open | x) app-open"
    elif $p == "authd-gated-c1" then "p50 \($v.p50_ratio | x) C (≤ 1.2×; \($v.p50_minus_c_us | us) µs); CPU C \($v.cpu_minus_c | us) µs"
    elif $p == "authd-get-checked" then "\($v.target_ratio | x) unchecked `GET /` (cost of the session check)"
    elif $p == "authd-refresh" then "\($v.target_ratio | x) `GET /` (≥ 0.6×)"
    elif $p == "authd-login" then "\($v.target_ratio | x) raw bcrypt (≥ 0.9×)"
    elif $p == "storm-get" then "\($v.target_ratio | x) solo req/s (≥ 0.5×), p99 \($v.p99_ratio | x) solo (< 4×)"
    elif $p == "storm-login" then "503s expected (hashing lane full)"
    else "" end;
  "Benchmark of \($r.date): \($r.machine.nproc) cores (\($r.machine.cpu)), \($r.machine.kernel); wrk \($r.versions.wrk), nginx \($r.versions.nginx), redis \($r.versions.redis); authd \(if $r.authd.binary_from == "swift build" then "built from \($r.authd.git)\(if $r.authd.dirty_source_files > 0 then " + \($r.authd.dirty_source_files) uncommitted source files" else "" end)" else "binary \($r.authd.binary_from)" end) (sha256 \($r.authd.binary_sha256)).",
  "`\($r.settings.wrk) -d\($r.settings.duration_s)s` (`\($r.settings.wrk_c1 // "-t1 -c1")` for the one-connection rows) through nginx, medians of \($r.settings.rounds) round(s); WORKERS=\($r.settings.workers), C responder \($r.settings.ref_threads) threads, KEEP_CONN=\($r.settings.keep_conn)\(if $r.settings.keep_conn == "on" then " (`fastcgi_keep_conn on`, `keepalive \($r.settings.keepalive)`)" else "" end) for authd and the C responder alike (deploy/nginx.conf: `fastcgi_keep_conn \($r.settings.deploy_nginx_conf.fastcgi_keep_conn)`, `keepalive \($r.settings.deploy_nginx_conf.keepalive)`); nginx access log \($r.settings.nginx_access_log // "off"); errors are totals and RSS/Recv-Q maxima over the rounds.",
  "",
  "| Profile | req/s | p50 ms | p99 ms | non-2xx | socket errors | app CPU µs/req | nginx CPU µs/req | peak RSS MiB | max Recv-Q | vs C `GET /` | target |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ($r.summary[] | . as $v
   | if .profile == "bcrypt-raw" then
       "| \($names[.profile]) | \(.rps | n(1)) | | | | | | | | | | |"
     else
       "| \($names[.profile]) | \(.rps | int) | \(.p50_ms | n(if $v.conns == 1 then 3 else 2 end)) | \(.p99_ms | n(2)) | \(.non2xx) | \(.socket_errors) | \(.cpu_us | n(1)) | \(.nginx_cpu_us | n(1)) | \(.vmhwm_kib | mib) | \(.recvq_max | int) | \(.vs_c_get | x) | \(target(.profile; $v)) |"
     end),
  "",
  "Targets (issue 3: 1-6; issue 13: 7-11): " + ([$r.targets[] | "\(.id) \(if .value == null then "n/a" elif .pass then "pass" else "FAIL" end)"] | join(", ")) + "."
  + "  Elapsed \($r.elapsed_s) s; authd log error lines: \($r.authd.log_errors); other processes used \($r.machine_load.other_processes_pct_during)% of the machine during the run (\($r.machine_load.busy_pct_before)% busy just before)."
