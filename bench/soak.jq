# bench/soak.sh: the samples (one object per line, slurped) and the run's figures
# (--arg/--argjson) -> bench/out/soak.json, with the verdicts. The rules are explained
# at the top of bench/soak.sh.
def pct(a; b): if b > 0 then ((a - b) * 1000 / b | round) / 10 else null end;

. as $samples
| ($samples | map(select(.t >= $warmup))) as $steady
| ($samples[-1]) as $last
| ($steady[0] // $last) as $base
# Redis's reference: the samples up to one TTL plus two intervals.
| ($ttl + 2 * $interval) as $ref_t
| ($samples | map(select(.t <= $ref_t))) as $early
| ($early | map(.keys) | max) as $ref_keys
| ($early | map(.used_memory) | max) as $ref_mem
| ($early | map(.session_keys) | max) as $ref_sessions
| ($lua | to_entries | map(select(.key | test("^status_5"))) | map(.value) | add // 0) as $s5xx
| ($lua | to_entries | map(select(.key | test("^status_[^2]"))) | map(.value) | add // 0) as $not2xx
| def spread(k): ($steady | map(.[k]) | max) - ($steady | map(.[k]) | min);
  {
    date: $date, nproc: $nproc, git: $git, git_dirty_files: $dirty, authd_sha256: $bin_sha,
    authd_from: $bin_from,
    settings: {
        seconds: $seconds, interval: $interval, refresh_token_ttl: $ttl, warmup: $warmup,
        bcrypt_cost: $cost, mix: $mix, login_users: $users, refresh_pool: $pool,
        workers: $workers, keep_conn: $keep_conn, keepalive: $keepalive,
        wrk: "-t\($wrk_threads) -c\($conns) -d\($seconds)s --timeout 10s",
        rss_growth_limit_pct: $rss_growth, fd_spread_limit: $fd_spread,
        fcgi_bound: $fcgi_bound, nginx_workers: $nginx_workers,
        redis_margin_pct: $redis_margin
    },
    wrk: {
        requests: $requests, rps: $rps, p50_ms: $p50, p99_ms: $p99, non2xx: $non2xx,
        socket_errors: $socket_errors, timeouts: $timeouts, lua: $lua
    },
    verdicts: {
        rss: {
            t_base: $base.t, base_kib: $base.rss_kib, t_end: $last.t, end_kib: $last.rss_kib,
            growth_pct: pct($last.rss_kib; $base.rss_kib),
            max_kib: ($steady | map(.rss_kib) | max),
            pass: (($last.rss_kib - $base.rss_kib) * 100 < $rss_growth * $base.rss_kib)
        },
        fds: {
            from_t: $base.t,
            total_min: ($steady | map(.fds) | min), total_max: ($steady | map(.fds) | max),
            other_min: ($steady | map(.fd_other) | min), other_max: ($steady | map(.fd_other) | max),
            redis_min: ($steady | map(.redis_conns) | min), redis_max: ($steady | map(.redis_conns) | max),
            threads_min: ($steady | map(.threads) | min), threads_max: ($steady | map(.threads) | max),
            fcgi_min: ($steady | map(.fcgi_conns) | min), fcgi_max: ($steady | map(.fcgi_conns) | max),
            fcgi_bound: $fcgi_bound,
            pass: (spread("fd_other") <= $fd_spread and spread("redis_conns") <= $fd_spread
                and spread("threads") <= $fd_spread
                and ($steady | map(.fcgi_conns) | max) <= $fcgi_bound)
        },
        redis: {
            ref_t: $ref_t, ref_keys: $ref_keys, end_keys: $last.keys,
            keys_vs_ref_pct: pct($last.keys; $ref_keys),
            ref_session_keys: $ref_sessions, end_session_keys: $last.session_keys,
            max_keys: ($samples | map(.keys) | max),
            ref_used_memory: $ref_mem, end_used_memory: $last.used_memory,
            memory_vs_ref_pct: pct($last.used_memory; $ref_mem),
            max_used_memory: ($samples | map(.used_memory) | max),
            expired_keys: ($last.expired_keys - $samples[0].expired_keys),
            logins_ok: ($lua.login_ok // 0),
            pass: ($last.keys * 100 <= $ref_keys * (100 + $redis_margin)
                and $last.used_memory * 100 <= $ref_mem * (100 + $redis_margin)
                and (($lua.login_ok // 0) == 0 or $last.expired_keys > $samples[0].expired_keys))
        },
        http: {
            requests: $requests, status_5xx: $s5xx, other_non2xx: ($not2xx - $s5xx),
            wrk_non2xx: $non2xx, socket_errors: $socket_errors,
            pass: (($lua | has("status_200")) and $s5xx == 0 and $not2xx == 0
                and $non2xx == 0 and $socket_errors == 0)
        }
    },
    elapsed_s: $elapsed, authd_log_errors: $authd_log_errors,
    busy_before_pct: $busy_before, other_load_pct: $other_load,
    samples: $samples
}
| .pass = ([.verdicts[].pass] | all)
