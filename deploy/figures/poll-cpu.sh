#!/bin/sh
# poll-cpu.sh — the issue-15 polling figure: one `emitop poll` polling every account of
# `emitop sandbox --accounts N` (5 providers × N accounts) at 30 s intervals for SECS
# seconds, on a SQLite store of its own. It prints the poller's CPU time as a share of
# one core and its peak resident memory (VmHWM), and the sandbox's apart, both read from
# /proc (Linux), and the requests and 429s the sandbox served (needs curl and jq). The
# poller's CPU is also given without the first fifth of the run, its start.
#
#   deploy/figures/poll-cpu.sh [N [SECS]]      # defaults: 2000 accounts per provider, 300 s
#
# Run it from the repository's root. The target: the poller below 25% of one core and
# 1 GB at N=2000 (10,000 accounts).
set -eu
N=${1:-2000}
SECS=${2:-300}
dir=$(mktemp -d)
trap 'kill "$sb" "$poll" 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/emitop" .
"$dir/emitop" sandbox --scenario calm --accounts "$N" --listen 127.0.0.1:0 --config-out "$dir/config.toml" >"$dir/sandbox.log" 2>&1 &
sb=$!
until grep -q '^config written' "$dir/sandbox.log" 2>/dev/null; do sleep 0.2; done
base=$(sed -n 's/.* on \(http[^ ]*\)$/\1/p' "$dir/sandbox.log" | head -1)
sed -i 's/^poll_interval = .*/poll_interval = "30s"/' "$dir/config.toml"
printf '\n[store]\npath = "%s/emitop.db"\n' "$dir" >>"$dir/config.toml"

# ticks is a process's user+system CPU time in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
sb0=$(ticks "$sb")
start=$(date +%s)
"$dir/emitop" poll --config "$dir/config.toml" >"$dir/poll.log" 2>&1 &
poll=$!
# The first fifth of the run holds the start: the configuration read, every account's first
# login and listing, every document's first sighting written. It is reported apart.
warm=$((SECS / 5))
sleep "$warm"
pw=$(ticks "$poll")
sleep $((SECS - warm))
end=$(date +%s)
pt=$(ticks "$poll")
ph=$(awk '/^VmHWM/ {print $2}' "/proc/$poll/status")
st=$(( $(ticks "$sb") - sb0 ))
sh=$(awk '/^VmHWM/ {print $2}' "/proc/$sb/status")
wall=$((end - start))
limited=0 requests=0
for p in alegra sv-dte certifactu factus alforse; do
	stats=$(curl -s "$base/$p/__sandbox/stats")
	limited=$((limited + $(echo "$stats" | jq .rate_limited)))
	requests=$((requests + $(echo "$stats" | jq .requests)))
done
kill -TERM "$poll"; wait "$poll" || true
awk -v n="$N" -v w="$wall" -v pt="$pt" -v pw="$pw" -v warm="$warm" -v st="$st" -v hz="$hz" -v ph="$ph" -v sh="$sh" -v l="$limited" -v r="$requests" 'BEGIN {
	printf "accounts %d over %d s\n", 5 * n, w
	printf "poller:  CPU %.1f%% of one core, max RSS %.0f MB\n", 100 * pt / hz / w, ph / 1024
	printf "poller after its first %d s: CPU %.1f%% of one core\n", warm, 100 * (pt - pw) / hz / (w - warm)
	printf "sandbox: CPU %.1f%% of one core, max RSS %.0f MB\n", 100 * st / hz / w, sh / 1024
	printf "requests served: %d, 429s: %d\n", r, l
}'
grep -c 'level=WARN\|level=ERROR' "$dir/poll.log" | sed 's/^/poller warnings and errors: /' || true
grep 'level=WARN\|level=ERROR' "$dir/poll.log" | head -3
