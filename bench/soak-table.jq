# bench/out/soak.json -> the soak's Markdown report (stdout and bench/out/soak.md).
def mib: . / 1048576 * 100 | round / 100;
def kib_mib: . / 1024 * 10 | round / 10;
def ok: if . then "pass" else "FAIL" end;
def signed: if . == null then "n/a" elif . >= 0 then "+\(.)" else "\(.)" end;

.settings as $s | .verdicts as $v | .wrk as $w
| "Soak of \(.date): \(.nproc) cores; authd built from \(.git)\(if .git_dirty_files > 0 then " + \(.git_dirty_files) changed files" else "" end) (sha256 \(.authd_sha256)).",
  "`wrk \($s.wrk)` through nginx, `bench/soak.lua`: \($s.mix) % GET / / refresh / login; REFRESH_TOKEN_TTL=\($s.refresh_token_ttl)s, BCRYPT_COST=\($s.bcrypt_cost), \($s.login_users) login users, a refresh pool of \($s.refresh_pool) sessions; WORKERS=\($s.workers), KEEP_CONN=\($s.keep_conn) (keepalive \($s.keepalive)); a sample every \($s.interval) s.",
  "",
  "| t s | authd RSS MiB | authd fds | not sockets | Redis conns | FastCGI conns | threads | Redis keys | session keys | used_memory MiB | expired keys |",
  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  (.samples[] as $r
   | "| \($r.t) | \($r.rss_kib | kib_mib) | \($r.fds) | \($r.fd_other) | \($r.redis_conns) | \($r.fcgi_conns) | \($r.threads) | \($r.keys) | \($r.session_keys) | \($r.used_memory | mib) | \($r.expired_keys) |"),
  "",
  "Verdicts:",
  "- RSS: \($v.rss.base_kib | kib_mib) MiB at \($v.rss.t_base) s, \($v.rss.end_kib | kib_mib) MiB at \($v.rss.t_end) s: \($v.rss.growth_pct | signed) % (limit < \($s.rss_growth_limit_pct) %; largest sample after \($v.rss.t_base) s: \($v.rss.max_kib | kib_mib) MiB): \($v.rss.pass | ok)",
  "- fds from \($v.fds.from_t) s on: total \($v.fds.total_min)-\($v.fds.total_max) (FastCGI connections come and go with nginx's); not sockets \($v.fds.other_min)-\($v.fds.other_max), Redis connections \($v.fds.redis_min)-\($v.fds.redis_max), threads \($v.fds.threads_min)-\($v.fds.threads_max) (each flat: max - min ≤ \($s.fd_spread_limit)); FastCGI connections \($v.fds.fcgi_min)-\($v.fds.fcgi_max) (≤ \($v.fds.fcgi_bound) that nginx can hold): \($v.fds.pass | ok)",
  "- Redis: \($v.redis.end_keys) keys at the end vs at most \($v.redis.ref_keys) up to \($v.redis.ref_t) s (one TTL + 2 samples), \($v.redis.keys_vs_ref_pct | signed) %; used_memory \($v.redis.end_used_memory | mib) MiB vs \($v.redis.ref_used_memory | mib) MiB, \($v.redis.memory_vs_ref_pct | signed) % (limit +\($s.redis_margin_pct) % for both); live sessions \($v.redis.end_session_keys) at the end (\($v.redis.ref_session_keys) by \($v.redis.ref_t) s) after \($v.redis.logins_ok) successful logins, \($v.redis.expired_keys) keys expired during the run: \($v.redis.pass | ok)",
  "- HTTP: \($w.requests) requests (\($w.rps | round) req/s, p50 \($w.p50_ms) ms, p99 \($w.p99_ms) ms; sent \($w.lua.gets // "?") GET /, \($w.lua.refreshes // "?") refreshes, \($w.lua.logins // "?") logins), answers \($w.lua | to_entries | map(select(.key | startswith("status_"))) | map("\(.key | ltrimstr("status_")): \(.value)") | join(", ")); 5xx \($v.http.status_5xx), other non-2xx \($v.http.other_non2xx) (wrk: \($v.http.wrk_non2xx)), socket errors \($v.http.socket_errors): \($v.http.pass | ok)",
  "",
  "Soak \(if .pass then "passed" else "FAILED" end). Elapsed \(.elapsed_s) s; authd log error lines: \(.authd_log_errors); other processes used \(.other_load_pct)% of the machine during the run (\(.busy_before_pct)% busy just before)."
