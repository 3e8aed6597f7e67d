#!/usr/bin/env bash
# Runs the measurements docs/BENCHMARKS.md reports, on this machine, and
# keeps every report under $OUT (default bench-results/<date>). About 40
# minutes; run it on a quiet machine and nothing else meanwhile.
#
#   scripts/benchmarks.sh                 # everything
#   scripts/benchmarks.sh quick           # skip the 10-minute soak and the 1M catch-up
#   scripts/benchmarks.sh retention-soak  # only the 30-minute retention soak (about 40 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-results/$(date -u +%Y%m%d-%H%M)}
mkdir -p "$OUT"
go build -o "$OUT/weft" ./cmd/weft
W="$OUT/weft"
log() { echo "== $*" | tee -a "$OUT/README"; }
uptime | tee -a "$OUT/README"

if [ "${1:-}" = retention-soak ]; then
	# docs/BENCHMARKS.md, "Retention soak": exits non-zero if an
	# acknowledged message is lost.
	log "retention soak: one node process, 10,000 msgs/s for 30 minutes, retain 5m, memory-limit 200MiB"
	WEFT_MEMORY_LIMIT=200MiB $W bench network --nodes 1 --rate 10000 --duration 30m --retain 5m --epoch-age 10s \
		--check-acks --json --plot "$OUT/retention-soak.svg" --csv "$OUT/retention-soak.csv" > "$OUT/retention-soak.json"
	uptime | tee -a "$OUT/README"
	echo "results in $OUT"
	exit 0
fi

log "ledger core and components"
go test -run XXX -bench 'CoreStep|ConfirmBacklog' -benchtime 300000x ./dag | tee "$OUT/dag.txt"
go test -run XXX -bench . ./pow ./tipselect | tee "$OUT/pow-tipselect.txt"
go test -run XXX -bench 'AppendEvent' ./api | tee "$OUT/api-events.txt"

log "one node: as fast as it takes, 30 s"
$W bench ingest --duration 30s --json --plot "$OUT/ingest.svg" > "$OUT/ingest.json"
log "one node: 10,000 msgs/s, 30 s"
$W bench ingest --rate 10000 --duration 30s --json --plot "$OUT/ingest-rate10k.svg" > "$OUT/ingest-rate10k.json"
log "one node: live devices, 20 s"
$W bench devices --duration 20s --json > "$OUT/devices.json"

log "three nodes (processes): as fast as they take, 30 s"
$W bench network --nodes 3 --duration 30s --json --plot "$OUT/network.svg" > "$OUT/network.json"
log "three nodes: 5,000 msgs/s, 30 s"
$W bench network --nodes 3 --rate 5000 --duration 30s --json --plot "$OUT/network-rate5k.svg" > "$OUT/network-rate5k.json"
log "three nodes: 10,000 msgs/s, 30 s"
$W bench network --nodes 3 --rate 10000 --duration 30s --json --plot "$OUT/network-rate10k.svg" > "$OUT/network-rate10k.json"

if [ "${1:-}" != quick ]; then
	log "catch-up: 1,000,000 messages, from one and from two peers"
	go test -run XXX -bench CatchUp -benchtime 1000000x -timeout 60m ./node | tee "$OUT/catchup.txt"
	log "one node: 10,000 msgs/s for 10 minutes"
	$W bench ingest --rate 10000 --duration 10m --json --plot "$OUT/ingest-10m-rate10k.svg" > "$OUT/ingest-10m-rate10k.json"
fi
uptime | tee -a "$OUT/README"
echo "results in $OUT"
