#!/usr/bin/env bash
# User-space instructions per echoed round trip of one echo server, counted by callgrind:
# the server runs under valgrind, the anchors' C client drives it (64-byte messages), the counts
# are zeroed after 2 s of load and dumped 5 s later, then divided by the round trips made in
# between (calls of the function that sends each reply). Repeatable to about ±3% (the batch a
# worker turn takes varies with timing) where perf's user-space share moves with the VM's
# placement; it does not see what an atomic or a cache miss costs. Run it 3 times per build.
#
#   scripts/echo-instructions.sh coil  .build/release/coil-echo futures [CONNS]
#   scripts/echo-instructions.sh c     /tmp/coil-uring-anchor/bin/uring_echo defer [CONNS]
#
# (compare-echo.py builds the anchors' binaries into /tmp/coil-uring-anchor/bin.) Needs valgrind.
# KEEP=FILE keeps callgrind's output there, for callgrind_annotate --inclusive=yes FILE.
set -euo pipefail
kind=$1 binary=$2 style=$3 conns=${4:-16} port=${PORT:-27200}
client=${CLIENT:-/tmp/coil-uring-anchor/bin/echo_client}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Swift's DWARF 5 is more than valgrind's reader takes: measure a copy without debug info.
objcopy --strip-debug "$binary" "$work/server"
chmod +x "$work/server"
case $kind in
    coil) args=(--port "$port" --workers 1 --style "$style"); sends=coil_ring_prep_send ;;
    c) args=(-p "$port" -m "$style"); sends=arm_send ;;
    *) echo "kind: coil or c" >&2; exit 2 ;;
esac
valgrind --tool=callgrind --callgrind-out-file="$work/out" "$work/server" "${args[@]}" >/dev/null 2>&1 &
server=$!
sleep 4
"$client" -p "$port" -c "$conns" -s 64 -d 8 -w 1 >/dev/null 2>&1 &
load=$!
sleep 2
callgrind_control -z "$server" >/dev/null 2>&1
sleep 5
callgrind_control -d "$server" >/dev/null 2>&1
wait "$load" || true
kill -9 "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
if [[ -n ${KEEP:-} ]]; then cp "$(ls "$work"/out.* | tail -1)" "$KEEP"; fi
python3 - "$(ls "$work"/out.* | tail -1)" "$sends" <<'PY'
import re, sys
path, sends = sys.argv[1], sys.argv[2]
names, calls, refcounts, total, callee = {}, 0, 0, 0, None
for line in open(path):
    m = re.match(r'^(c?fn)=\((\d+)\)(?: (.*))?', line)
    if m:
        kind, i, name = m.groups()
        if name: names[i] = name
        callee = names.get(i, '') if kind == 'cfn' else None
        continue
    if line.startswith('calls=') and callee is not None:
        n = int(line.split('=')[1].split()[0])
        if callee == sends: calls += n
        if re.fullmatch(r'swift_(retain|release)(_n)?', callee): refcounts += n
        callee = None
    elif line.startswith('totals:') or line.startswith('summary:'):
        total = int(line.split()[1])
print(f"{calls} round trips; {total / max(calls, 1):.0f} instructions and "
      f"{refcounts / max(calls, 1):.1f} swift_retain/release calls per round trip")
PY
