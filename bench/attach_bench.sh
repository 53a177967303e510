#!/usr/bin/env bash
# attach_bench.sh BUILD_DIR: what attachments cost (issue 11; docs/files.md "Attachments").
#  1. Downloads of one 64 KiB attachment: SB_BENCH_ATTACH_N by alice, its owner (files reads
#     the row, as before attachments), and in the same run as many by bob, a member of the
#     conversation it is attached to (files also asks messages.CanReadAttachment: one RPC, one
#     indexed query). The peer is the owner's download: the same work without the check.
#  2. Sends: SB_BENCH_ATTACH_N messages without attachments and as many attaching that file
#     (messages asks files.CheckAttachments before queueing the send).
# Each through curl on one keep-alive connection, one request at a time; p50 and p99 of
# curl's time_total. Target: the check adds at most 5 ms to the median of each (so no cache in
# front of it is worth its staleness). Exit 1 on a miss. Starts its own PostgreSQL, Redis and
# Kafka broker (tests/lib/with-stack.sh), auth, messages, gateway and files.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${SB_TEST_TMP:-}" ]; then
	SB_BUILD_ROOT=$(cd "${1:-build}" && pwd) || exit 1
	export SB_BUILD_ROOT SB_SOURCE_ROOT=$root
	exec bash "$root/tests/lib/with-stack.sh" --stack pg,redis,kafka1 -- bash "$0" "$SB_BUILD_ROOT"
fi
. "$root/tools/stack.sh"
. "$root/tests/lib/services.sh"
. "$root/tests/files/stack.sh"
n=${SB_BENCH_ATTACH_N:-500}
budget_ms=5
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "attach_bench: $n requests each, $(date -u +%FT%TZ), load $(load)"
export SB_RATE_LIMIT_PER_MIN=100000000 # the gateway's per-user limit is not measured here
files_stack_up || exit 1

head -c 65536 /dev/urandom >"$SB_TEST_TMP/a.bin"
fa=$(curl -sS -D - -o /dev/null -X POST -H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $alice" \
	-H "Upload-Length: 65536" -H "Content-Type: application/offset+octet-stream" \
	--data-binary @"$SB_TEST_TMP/a.bin" "$F/files/" | tr -d '\r' | grep -i '^location:' | sed 's#.*/##')
bob_id=$(curl -s -H "Authorization: Bearer $bob" "$SB_GW/v1/me" | jq -r .user_id)
conv=$(curl -s -H "Authorization: Bearer $alice" -H 'Content-Type: application/json' \
	-d "{\"kind\":\"group\",\"member_ids\":[\"$bob_id\"]}" "$SB_GW/v1/conversations" | jq -r .id)
[ ${#fa} = 36 ] && [ ${#conv} = 36 ] || { echo "FAIL: set-up (file '$fa', conversation '$conv')"; exit 1; }

# run NAME CONFIG: curl with a config of requests separated by "next"; prints the status
# codes' summary check and leaves the times (ms) in $SB_TEST_TMP/NAME.ms
run() {
	curl -s -K "$2" | awk -v f="$SB_TEST_TMP/$1.codes" '{ print $1 > f; print $2 * 1000 }' >"$SB_TEST_TMP/$1.ms"
}
pct() { sort -n "$SB_TEST_TMP/$1.ms" | awk -v p="$2" '{ a[NR] = $1 } END { i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.2f", a[i] }'; }
all() { [ "$(sort -u "$SB_TEST_TMP/$1.codes")" = "$2" ] || { echo "FAIL: $1 answered $(sort "$SB_TEST_TMP/$1.codes" | uniq -c | tr '\n' ' ')"; exit 1; }; }

dl_conf() { # TOKEN
	for i in $(seq "$n"); do
		[ "$i" = 1 ] || echo next
		printf 'url = "%s"\noutput = "/dev/null"\nheader = "Authorization: Bearer %s"\nwrite-out = "%%{http_code} %%{time_total}\\n"\n' \
			"$F/v1/files/$fa/content" "$1"
	done
}
send_conf() { # ATTACHMENTS_JSON
	for i in $(seq "$n"); do
		[ "$i" = 1 ] || echo next
		printf 'url = "%s"\noutput = "/dev/null"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "{\\"id\\":\\"%s\\",\\"conversation_id\\":\\"%s\\",\\"content\\":\\"x\\",\\"attachments\\":%s}"\nwrite-out = "%%{http_code} %%{time_total}\\n"\n' \
			"$SB_GW/v1/messages" "$alice" "$(cat /proc/sys/kernel/random/uuid)" "$conv" "$1"
	done
}
dl_conf "$alice" >"$SB_TEST_TMP/owner.cfg"
dl_conf "$bob" >"$SB_TEST_TMP/member.cfg"
send_conf '[]' >"$SB_TEST_TMP/warm.cfg"
send_conf '[]' >"$SB_TEST_TMP/plain.cfg"
send_conf "[\\\"$fa\\\"]" >"$SB_TEST_TMP/attach.cfg"

# warm-up, then each pair back to back (attach, owner, member, plain)
run warm "$SB_TEST_TMP/warm.cfg"
run attach "$SB_TEST_TMP/attach.cfg"
all attach 202
run owner "$SB_TEST_TMP/owner.cfg"
run member "$SB_TEST_TMP/member.cfg"
run plain "$SB_TEST_TMP/plain.cfg"
all owner 200
all member 200
all plain 202

o50=$(pct owner 50) o99=$(pct owner 99) m50=$(pct member 50) m99=$(pct member 99)
p50=$(pct plain 50) p99=$(pct plain 99) a50=$(pct attach 50) a99=$(pct attach 99)
printf 'download by the owner:            p50 %7s ms  p99 %7s ms\n' "$o50" "$o99"
printf 'download by a member (checked):   p50 %7s ms  p99 %7s ms\n' "$m50" "$m99"
printf 'send without attachments:         p50 %7s ms  p99 %7s ms\n' "$p50" "$p99"
printf 'send with one attachment:         p50 %7s ms  p99 %7s ms\n' "$a50" "$a99"
dd=$(echo "$m50 - $o50" | bc -l) ds=$(echo "$a50 - $p50" | bc -l)
printf 'the check adds (p50): download %.2f ms, send %.2f ms; budget %d ms; load %s\n' "$dd" "$ds" "$budget_ms" "$(load)"
if [ "$(echo "$dd <= $budget_ms && $ds <= $budget_ms" | bc)" = 1 ]; then
	echo "VERDICT: PASS"
else
	echo "VERDICT: FAIL (the attachment checks cost more than $budget_ms ms at the median)"
	exit 1
fi
