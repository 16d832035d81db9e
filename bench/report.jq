# Input: the records of bench/run.sh (jq -s over records.jsonl). Output: results.json
# with per-profile medians over the rounds, the targets of issues 3 and 13, and every
# record. A ratio compares two profiles of the same round; the summary has the median
# of those ratios.
def median: map(select(. != null)) | sort
  | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def rnd($n): if . == null then null else (. * pow(10; $n) | round) / pow(10; $n) end;
def div($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
def minus($a; $b): if $a == null or $b == null then null else $a - $b end;

. as $recs
| def rec($round; $p): first($recs[] | select(.round == $round and .profile == $p)) // null;
# Per-round ratios, attached to each record.
  ($recs | map(
    . as $r
    | rec($r.round; "c-ref-get") as $c
    | rec($r.round; "authd-get") as $g
    | . + {vs_c_get: div($r.rps; $c.rps)}
    | rec($r.round; "c-gated") as $cg
    | if .profile == "authd-get" then . + {target_ratio: div($r.rps; $c.rps),
          cpu_minus_c: minus($r.cpu_us; $c.cpu_us), p99_ratio: div($r.p99_ms; $c.p99_ms)}
      # Issue 13: the gate. authd's verify against the C responder's, behind the same
      # /app/; both against the same location without auth_request (app-open).
      elif .profile == "c-gated" then . + {vs_open: div($r.rps; rec($r.round; "app-open").rps)}
      elif .profile == "authd-gated" then . + {target_ratio: div($r.rps; $cg.rps),
          vs_open: div($r.rps; rec($r.round; "app-open").rps),
          cpu_minus_c: minus($r.cpu_us; $cg.cpu_us), p99_ratio: div($r.p99_ms; $cg.p99_ms),
          # Peak RSS over authd-get's in the same process (its growth in this run without one).
          rss_delta_kib: minus($r.vmhwm_kib; ($g.vmhwm_kib // $r.vmhwm_before_kib))}
      elif .profile == "authd-gated-c1" or .profile == "authd-get-c1" then
          (rec($r.round; if .profile == "authd-gated-c1" then "c-gated-c1" else "c-ref-get-c1" end)) as $c1
          | . + {p50_ratio: div($r.p50_ms; $c1.p50_ms),
                 p50_minus_c_us: (minus($r.p50_ms; $c1.p50_ms) | if . == null then null else . * 1000 end),
                 cpu_minus_c: minus($r.cpu_us; $c1.cpu_us)}
      elif .profile == "authd-refresh" or .profile == "authd-get-checked" then . + {target_ratio: div($r.rps; $g.rps)}
      elif .profile == "authd-login" then . + {target_ratio: div($r.rps; rec($r.round; "bcrypt-raw").rps)}
      elif .profile == "storm-get" then . + {target_ratio: div($r.rps; $g.rps), p99_ratio: div($r.p99_ms; $g.p99_ms)}
      else . end
  )) as $all
| ["nginx-return200", "c-ref-get", "authd-get", "c-ref-get-c1", "authd-get-c1",
   "app-open", "c-gated", "authd-gated", "c-gated-c1", "authd-gated-c1",
   "authd-get-checked", "authd-refresh", "authd-login", "authd-mixed",
   "storm-get", "storm-login", "bcrypt-raw"] as $order
| ($order | map(. as $p | $all | map(select(.profile == $p)) | select(length > 0) | {
      profile: $p,
      rounds: length,
      rps: (map(.rps) | median | rnd(1)),
      p50_ms: (map(.p50_ms) | median | rnd(3)),
      p99_ms: (map(.p99_ms) | median | rnd(3)),
      requests: (map(.requests) | add),
      non2xx: (map(.non2xx // 0) | add),
      socket_errors: (map(.socket_errors // 0) | add),
      timeouts: (map(.timeouts // 0) | add),
      cpu_us: (map(.cpu_us) | median | rnd(2)),
      nginx_cpu_us: (map(.nginx_cpu_us) | median | rnd(2)),
      vmhwm_kib: (map(.vmhwm_kib) | map(select(. != null)) | max),
      recvq_max: (map(.recvq_max) | map(select(. != null)) | max),
      vs_c_get: (map(.vs_c_get) | median | rnd(3)),
      target_ratio: (map(.target_ratio) | median | rnd(3)),
      p99_ratio: (map(.p99_ratio) | median | rnd(3)),
      cpu_minus_c: (map(.cpu_minus_c) | median | rnd(2)),
      conns: (map(.conns) | map(select(. != null)) | max),
      vs_open: (map(.vs_open) | median | rnd(3)),
      p50_ratio: (map(.p50_ratio) | median | rnd(3)),
      p50_minus_c_us: (map(.p50_minus_c_us) | median | rnd(1)),
      rss_delta_kib: (map(.rss_delta_kib) | map(select(. != null)) | max),
      lua: (map(.lua // empty) | map(select(. != "")))
  } | with_entries(select(.value != null)))) as $summary
| def s($p): first($summary[] | select(.profile == $p)) // {};
  (s("authd-get")) as $g | (s("c-ref-get")) as $c | (s("authd-refresh")) as $rf
| (s("authd-login")) as $l | (s("storm-get")) as $st | (s("bcrypt-raw")) as $b
| (s("authd-gated")) as $ag | (s("authd-gated-c1")) as $ag1
| ([$summary[] | select(.profile | test("^(authd|storm)-")) | .vmhwm_kib] | max) as $hwm
| ([$summary[] | (.socket_errors) + (if .profile == "storm-login" then 0 else .non2xx end)] | add) as $errors
| {
    date: $date,
    machine: {nproc: $nproc, cpu: $cpu, kernel: $kernel},
    versions: {wrk: $wrk, nginx: $nginx, redis: $redis},
    authd: {binary_from: $bin_from, git: $git, dirty_source_files: $dirty, binary_sha256: $bin_sha, log_errors: $authd_log_errors},
    settings: {duration_s: $duration, rounds: $rounds, wrk: "wrk -t2 -c64 --latency --timeout 10s", wrk_c1: "-t1 -c1",
               workers: $workers, ref_threads: $ref_threads, keep_conn: $keep_conn, keepalive: (if $keep_conn == "on" then $keepalive else null end),
               nginx_access_log: $access_log,
               deploy_nginx_conf: {fastcgi_keep_conn: $deploy_keep, keepalive: $deploy_keepalive}, mix_get_refresh_login: $mix,
               login_bcrypt_cost: $login_cost, storm_bcrypt_cost: $storm_cost},
    elapsed_s: $elapsed,
    machine_load: {busy_pct_before: $busy_before, other_processes_pct_during: $other_load},
    summary: $summary,
    targets: [
      {id: 1, what: "GET / >= 1.0x the C responder, CPU <= C + 3 us",
       value: $g.target_ratio, cpu_minus_c_us: $g.cpu_minus_c,
       pass: ($g.target_ratio != null and $g.target_ratio >= 1.0 and $g.cpu_minus_c != null and $g.cpu_minus_c <= 3)},
      {id: 2, what: "refresh >= 0.6x GET /", value: $rf.target_ratio,
       pass: ($rf.target_ratio != null and $rf.target_ratio >= 0.6)},
      {id: 3, what: "login (cost 10) >= 0.9x raw bcrypt rate", value: $l.target_ratio, bcrypt_per_s: $b.rps,
       pass: ($l.target_ratio != null and $l.target_ratio >= 0.9)},
      {id: 4, what: "GET / under a cost-12 login storm keeps >= 50% throughput, p99 < 4x solo",
       value: $st.target_ratio, p99_ratio: $st.p99_ratio,
       pass: ($st.target_ratio != null and $st.target_ratio >= 0.5 and $st.p99_ratio != null and $st.p99_ratio < 4)},
      {id: 5, what: "authd peak RSS (VmHWM) <= 24 MiB", value: (if $hwm then ($hwm / 1024 | rnd(1)) else null end),
       pass: ($hwm != null and $hwm <= 24576)},
      {id: 6, what: "no errors (non-2xx, socket errors) except 503s in storm-login", value: $errors,
       pass: ($errors == 0)},
      {id: 7, issue: 13, what: "authd-gated >= 1.0x c-gated req/s", value: $ag.target_ratio,
       pass: ($ag.target_ratio != null and $ag.target_ratio >= 1.0)},
      {id: 8, issue: 13, what: "authd CPU per verify <= C responder's + 3 us (authd-gated vs c-gated)",
       value: $ag.cpu_minus_c, pass: ($ag.cpu_minus_c != null and $ag.cpu_minus_c <= 3)},
      {id: 9, issue: 13, what: "authd-gated p99 <= 1.5x c-gated p99", value: $ag.p99_ratio,
       pass: ($ag.p99_ratio != null and $ag.p99_ratio <= 1.5)},
      {id: 10, issue: 13, what: "authd-gated-c1 p50 <= 1.2x c-gated-c1 p50", value: $ag1.p50_ratio,
       p50_minus_c_us: $ag1.p50_minus_c_us, pass: ($ag1.p50_ratio != null and $ag1.p50_ratio <= 1.2)},
      {id: 11, issue: 13, what: "RSS unchanged: authd's peak RSS after authd-gated <= after authd-get + 1 MiB",
       value: $ag.rss_delta_kib, pass: ($ag.rss_delta_kib != null and $ag.rss_delta_kib <= 1024)}
    ],
    rounds: $all
  }
