#!/usr/bin/env bash
# Coil's bounded queue beside the best queues of ../shared/anchors/queues, in one run.
#
# Copies the anchors harness into a scratch directory (it is not part of Coil), adds Coil's
# adapter (scripts/anchors/q_coil.c) and builds: the anchors' own Vyukov queue, xenium's
# vyukov_bounded_queue (weak), crossbeam's ArrayQueue (Rust) and coil_mpmc from C, plus coil-demo
# for MPMCQueue<UInt64> from Swift (same rules, same output lines). Then ROUNDS rounds; each round
# runs every (queue, configuration) once as its own process, in an order shuffled per round (a run
# is faster or slower depending on which one ran just before it). Before each run it waits for a
# quiet machine and repeats a run during which other processes used more than 0.30 cores, as the
# anchors' run.sh does. The anchors' own Vyukov queue also runs a second time under another name
# (vyukov_c11_again): the same binary against itself shows how far apart two medians of one run
# fall when nothing differs. Prints the anchors' median (min-max) tables and, from
# scripts/queue-parity.py, Coil's ratio to each other queue paired round by round.
#
# Env: ROUNDS (15), N items per run (4000000), WORK (/tmp/coil-anchors-queues),
#      ANCHORS (../shared/anchors/queues). Takes about 7 minutes with the defaults.
set -uo pipefail
COIL=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=$(cd "${ANCHORS:-$COIL/../shared/anchors/queues}" && pwd)
WORK=${WORK:-/tmp/coil-anchors-queues}
ROUNDS=${ROUNDS:-15}
N=${N:-4000000}
DEADLINE=10

need() { dpkg -s "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$1" >/dev/null; }; }
need libxenium-dev
need librust-crossbeam-queue-dev
"$COIL/scripts/ensure-deps.sh"

rm -rf "$WORK" && cp -r "$ANCHORS" "$WORK" && rm -rf "$WORK/bin" "$WORK/results" "$WORK/rust/target"
cp "$COIL/scripts/anchors/q_coil.c" "$WORK/src/"
make -s -C "$WORK" bin/vyukov_c11 bin/xenium_vyukov_weak bin/atomics_floor rust || exit 1
gcc -O2 -g -Wall -Wextra -std=c11 -pthread -D_GNU_SOURCE -I"$WORK/src" -I"$COIL/CSources/CCoil/include" \
    -o "$WORK/bin/coil_mpmc_c" "$WORK/src/q_coil.c" "$COIL/CSources/CCoil/mpmc.c" || exit 1
(cd "$COIL/Benchmarks" && swift build -c release --product coil-demo) || exit 1
ln -s "$COIL/Benchmarks/.build/release/coil-demo" "$WORK/bin/coil-demo"

cd "$WORK"
source ./quiet.sh   # wait_quiet
runs=()
for cap in 1024 65536; do
  for q in "bin/vyukov_c11" "again bin/vyukov_c11" "bin/xenium_vyukov_weak" "bin/coil_mpmc_c" \
           "bin/coil-demo transfer --impl coil_mpmc_swift" "bin/crossbeam_bench --impl array_queue"; do
    runs+=("$q -m lat -n $N -q $cap -r 1 -D $DEADLINE")
    for k in 1 2 4; do runs+=("$q -m tput -p $k -c $k -n $N -q $cap -r 1 -D $DEADLINE"); done
  done
done
mkdir -p results
LOG=$WORK/results/queues_$(date +%Y%m%d_%H%M%S).log
echo "# $(date -Is) $(uname -r) nproc=$(nproc) rounds=$ROUNDS N=$N coil=$(git -C "$COIL" rev-parse --short HEAD)" | tee "$LOG"
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r/$ROUNDS $(date -Is) loadavg: $(cat /proc/loadavg)" | tee -a "$LOG"
  bin/atomics_floor 1 pp | sed 's/^/# probe /' >> "$LOG"
  mapfile -t order < <(printf '%s\n' "${runs[@]}" | shuf --random-source=<(yes "$r"))
  for c in "${order[@]}"; do
    for attempt in 1 2 3; do
      wait_quiet
      if [[ $c == again* ]]; then
        line=$(timeout 300 ${c#again } | grep '^run ' | sed 's/impl=\([^ ]*\)/impl=\1_again/')
      else
        line=$(timeout 300 $c | grep '^run ')
      fi
      [ -n "$line" ] || { echo "# FAILED: $c" | tee -a "$LOG"; break; }
      ext=$(sed -n 's/.* ext=\([0-9.]*\).*/\1/p' <<<"$line")
      if [ $attempt -lt 3 ] && awk -v e="$ext" 'BEGIN{exit !(e>0.30)}'; then
        echo "#discard $line" >> "$LOG"; continue
      fi
      echo "$line pin=0" >> "$LOG"; break
    done
  done
done
echo "# log: $LOG"
python3 table.py "$LOG"
echo
python3 "$COIL/scripts/queue-parity.py" "$LOG"
