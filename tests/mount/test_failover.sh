#!/usr/bin/env bash
# Surviving the network: servers and proxies fail over (fetch/route.c).
#   - two nginx origins serving the same paths: the first dies during a
#     cold read; the read goes on from the mirror (-o mirrors=), the tree
#     is byte-identical to GNU tar's extraction, the log and the mirror's
#     access log show the switch;
#   - proxy groups (-o proxies="DEAD;SQUID|NGINX;DIRECT"): a dead proxy,
#     then Debian's Squid or an nginx forward proxy (picked at random),
#     then, when both die, DIRECT; every step seen in the proxies' logs;
#   - trust over http:// needs allow_insecure (test_trust has it).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool nginx squid curl

fx=$(fixture_dir)
ref=$fx/extract
name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
mkdir -p "$www/sf"
ln "$fx/$name" "$www/sf/$name" 2>/dev/null || cp "$fx/$name" "$www/sf/$name"
"$SFFS_INDEX" -q "$www/sf/$name" -o "$www/sf/$name.sfidx" || fail "sffs-index failed"

# requests LOG: requests for the tarball in an nginx access log
requests() { awk -v s="/sf/$name" 'index($4, s) && $4 !~ /sfidx/ { n++ } END { print n + 0 }' "$1"; }

step "two origins serving the same paths"
nginx_start "$www"
a_url=$NGINX_URL a_log=$NGINX_LOG a_pid=$NGINX_PID
nginx_start "$www"
b_url=$NGINX_URL b_log=$NGINX_LOG

step "the first origin dies during a cold read: the mirror serves the rest"
mnt=$TEST_TMP/m1
mount_fg "$a_url/sf/$name" "$mnt" "$TEST_TMP/m1.log" \
	-o cache_dir=none,mirrors="$b_url/sf/",retries=2,timeout=30
cmp "$mnt/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs before the failover"
[ "$(requests "$b_log")" = 0 ] || fail "the mirror was asked before the origin failed"
kill_pid "$a_pid"
t0=$(date +%s.%N)
"$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" || fail "tree differs after the failover"
t1=$(date +%s.%N)
grep -q "server $a_url/sf/ failed .*switching to $b_url/sf/" "$TEST_TMP/m1.log" ||
	fail "no failover logged: $(tail -5 "$TEST_TMP/m1.log")"
nb=$(requests "$b_log")
[ "$nb" -gt 0 ] || fail "the mirror served nothing"
log "failover: whole tree read in $(echo "$t1 - $t0" | bc 2>/dev/null || echo "?") s after the origin died; $nb requests to the mirror"
sffs_unmount "$mnt"

step "proxy groups: a dead proxy, then squid|nginx, then DIRECT"
squid_start
NGINX_SERVER_EXTRA='location / { proxy_pass http://$http_host; }' nginx_start "$www"
p_url=$NGINX_URL p_log=$NGINX_LOG p_pid=$NGINX_PID
dead=http://127.0.0.1:$(free_port)
mnt=$TEST_TMP/m2
mount_fg "$b_url/sf/$name" "$mnt" "$TEST_TMP/m2.log" \
	-o cache_dir=none,retries=2,proxies="$dead;$SQUID_URL|$p_url;DIRECT"
cmp "$mnt/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs through the proxies"
grep -q "proxy $dead failed .*switching to" "$TEST_TMP/m2.log" ||
	fail "the dead proxy was not left: $(tail -5 "$TEST_TMP/m2.log")"
nsq=$(grep -c "/sf/$name" "$SQUID_LOG" || true)
npx=$(awk -v s="/sf/$name" 'index($4, s) { n++ } END { print n + 0 }' "$p_log")
[ $((nsq + npx)) -gt 0 ] || fail "neither squid nor the nginx proxy carried a request"
log "group 2 carried the requests: squid $nsq, nginx proxy $npx"
b_before=$(requests "$b_log")
kill_pid "$SQUID_PID"
kill_pid "$p_pid"
"$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" || fail "tree differs after the proxies died"
grep -q "switching to DIRECT" "$TEST_TMP/m2.log" ||
	fail "no switch to DIRECT: $(tail -5 "$TEST_TMP/m2.log")"
b_after=$(requests "$b_log")
log "DIRECT: $((b_after - b_before)) requests straight to the origin once both proxies died"
sffs_unmount "$mnt"
