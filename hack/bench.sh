#!/usr/bin/env bash
# Benchmarks of the hot path, the floor and a load run against a local
# distributor with fake segment-writers that ack at once; writes a markdown
# report (every figure next to the floor measured in the same run).
#
#   hack/bench.sh                 # report under a new temp dir, printed at the end
#   BENCH_OUT=/tmp/b hack/bench.sh
#
# Knobs (environment, default in parentheses): BENCHTIME (go test -benchtime,
# 1s), COMPARE_COUNT (3), LOAD_DURATION (15s), LOAD_WORKERS (closed-loop
# workers at saturation, 16), WRITERS (3), INFLIGHT_MIB (the distributor's
# in-flight budget, 256), SKIP_LOAD=1 (benchmarks only), NET (first three
# octets of the 127.0.0.0/8 addresses used, 127.0.77), PORT_BASE (24040).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/pyrodist-bench.XXXXXX")}
BENCHTIME=${BENCHTIME:-1s}
COMPARE_COUNT=${COMPARE_COUNT:-3}
LOAD_DURATION=${LOAD_DURATION:-15s}
LOAD_WORKERS=${LOAD_WORKERS:-16}
WRITERS=${WRITERS:-3}
INFLIGHT_MIB=${INFLIGHT_MIB:-256}
NET=${NET:-127.0.77}
PORT_BASE=${PORT_BASE:-24040}
HTTP_PORT=$PORT_BASE               # distributor HTTP (and each writer's HTTP on its own IP)
GRPC_PORT=$((PORT_BASE + 1))       # writers' gRPC
GOSSIP_PORT=$((PORT_BASE + 2))     # memberlist on every member
DIST=$NET.1
DIST_URL=http://$DIST:$HTTP_PORT
mkdir -p "$OUT/bin" "$OUT/load" "$OUT/logs"
log() { printf '%s bench: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

pids=()
cleanup() {
	# Only the processes this script started, by pid.
	for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

{
	echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc) (GOMAXPROCS ${GOMAXPROCS:-$(nproc)})"
	echo "memory:  $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel:  $(uname -sr)"
	echo "go:      $($GO env GOVERSION)"
	echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty tree)')"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

log "building distributor, fakewriter, loadgen into $OUT/bin"
$GO build -o "$OUT/bin/" ./cmd/distributor ./test/cmd/fakewriter ./test/cmd/loadgen ./hack/benchreport

# Benchmarks run one package at a time (-p 1) so they do not share the CPUs.
pkgs=()
for p in ./internal/profile ./internal/distributor ./internal/placement; do
	[ -d "$p" ] && pkgs+=("$p")
done
# The floor-vs-pipeline comparison on the mix runs COMPARE_COUNT times (the
# report takes the median), everything else once.
log "floor vs pipeline on the corpus (test/bench; mix x$COMPARE_COUNT; benchtime $BENCHTIME)"
# Interleaved (floor, pipeline, floor, ...), not -count N (all floors, then all
# pipelines): the report pairs runs that were next to each other in time.
$GO test -c -o "$OUT/bin/bench.test" ./test/bench
: >"$OUT/bench.txt"
for _ in $(seq "$COMPARE_COUNT"); do
	(cd test/bench && "$OUT/bin/bench.test" -test.run '^$' -test.bench 'Compare/./mix$' -test.benchmem \
		-test.benchtime "$BENCHTIME") | tee -a "$OUT/bench.txt" >&2
done
$GO test -run '^$' -bench 'Compare/./^(cpu|heap|cpu-16k|small)$' -benchmem -benchtime "$BENCHTIME" ./test/bench | tee -a "$OUT/bench.txt" >&2
$GO test -run '^$' -bench 'Stages' -benchmem -benchtime "$BENCHTIME" ./test/bench | tee -a "$OUT/bench.txt" >&2
$GO test -run '^$' -bench 'OTLP' -benchmem -count 3 -benchtime "$BENCHTIME" ./test/bench | tee -a "$OUT/bench.txt" >&2 # OTLP export: ours next to its floor
log "package benchmarks: ${pkgs[*]} (benchtime $BENCHTIME)"
$GO test -p 1 -run '^$' -bench . -benchmem -benchtime "$BENCHTIME" "${pkgs[@]}" | tee -a "$OUT/bench.txt" >&2
$GO test -run '^$' -bench 'Formats' -benchmem -benchtime "$BENCHTIME" ./internal/ingest/legacy | tee -a "$OUT/bench.txt" >&2 # /ingest trie, tree, speedscope next to their floors
log "JFR: /ingest next to jfr-parser's own conversion, x$COMPARE_COUNT"; for _ in $(seq "$COMPARE_COUNT"); do $GO test -run '^$' -bench '^BenchmarkJFR$' -benchmem -benchtime "$BENCHTIME" ./internal/ingest | tee -a "$OUT/bench.txt" >&2; done
log "floor references (test/floor)"
$GO test -run '^$' -bench 'Floor/mix|FloorStdlib/mix|Inflate' -benchmem -benchtime "$BENCHTIME" ./test/floor | tee -a "$OUT/bench.txt" >&2

wait_ready() { # url, seconds
	local url=$1 deadline=$((SECONDS + $2))
	until "$OUT/bin/loadgen" -probe "$url" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then return 1; fi
		sleep 0.5
	done
}

load_run() {
	[ "${SKIP_LOAD:-}" = 1 ] && { log "SKIP_LOAD=1: no load run"; return 0; }
	log "starting $WRITERS fake segment-writers and a distributor on $NET.x"
	local join=$NET.2:$GOSSIP_PORT
	local writer_pids=() dist_cpus=""
	for i in $(seq 2 $((WRITERS + 1))); do
		"$OUT/bin/fakewriter" -log.level=warn \
			-server.grpc-listen-address="$NET.$i" -server.grpc-listen-port=$GRPC_PORT \
			-server.http-listen-address="$NET.$i" -server.http-listen-port=$HTTP_PORT \
			-memberlist.bind-addr="$NET.$i" -memberlist.bind-port=$GOSSIP_PORT \
			-memberlist.advertise-addr="$NET.$i" -memberlist.advertise-port=$GOSSIP_PORT \
			-memberlist.join="$join" \
			-segment-writer.lifecycler.addr="$NET.$i" -segment-writer.lifecycler.ID="bench-writer-$i" \
			-segment-writer.availability-zone=zone-a -fakewriter.skip-profile-check \
			$FAKEWRITER_FLAGS >"$OUT/logs/fakewriter-$i.log" 2>&1 &
		pids+=($!)
		writer_pids+=($!)
	done
	for i in $(seq 2 $((WRITERS + 1))); do
		wait_ready "http://$NET.$i:$HTTP_PORT/ready" 60 || { log "fake writer $i not ready: see $OUT/logs"; return 1; }
	done
	# Rate limits are lifted: the run measures the distributor's cost, not its limits.
	start_distributor() { # extra environment, e.g. GOMEMLIMIT=256MiB
		local pin=()
		[ -n "$dist_cpus" ] && pin=(taskset -c "$dist_cpus")
		env "$@" "${pin[@]}" "$OUT/bin/distributor" -log.level=warn \
			-server.http-listen-address="$DIST" -server.http-listen-port=$HTTP_PORT \
			-memberlist.bind-addr="$DIST" -memberlist.bind-port=$GOSSIP_PORT \
			-memberlist.advertise-addr="$DIST" -memberlist.advertise-port=$GOSSIP_PORT \
			-memberlist.join="$join" -distributor.ring.instance-addr="$DIST" \
			-auth.multitenancy-enabled=true -server.enable-pprof \
			-distributor.ingestion-rate-limit-mb=1000000 -distributor.ingestion-burst-size-mb=1000000 \
			-distributor.max-inflight-bytes=$((INFLIGHT_MIB << 20)) \
			$DISTRIBUTOR_FLAGS >>"$OUT/logs/distributor.log" 2>&1 &
		dpid=$!
		pids+=($dpid)
		wait_ready "$DIST_URL/ready" 60 || { log "distributor not ready: see $OUT/logs/distributor.log"; return 1; }
	}
	local dpid
	start_distributor || return 1

	# The floor again, right before and after the load runs: the machine may
	# be busier or quieter than during the benchmarks above.
	load_floor() { # [run name: also kept as that run's own yardstick] [corpus: mix (default) or small]
		local corpus=${2:-mix} all=()
		[ "$corpus" = mix ] && all=("$OUT/load-floor.txt")
		"$OUT/bin/bench.test" -test.run '^$' -test.bench "Compare/floor/$corpus\$" -test.benchtime "$BENCHTIME" \
			-test.benchmem | tee -a ${all[@]+"${all[@]}"} ${1:+"$OUT/load/$1.floor.txt"} >&2
	}
	# A run whose cost is compared with the floor gets the floor measured
	# right before and right after it: this VM's speed drifts by up to 20%
	# within a minute, and a yardstick minutes away lets that into the ratio.
	# The agent-sized runs get the floor of the agent-sized profiles (small).
	costed() { # run name, floor corpus, then loadgen arguments
		local name=$1 corpus=$2
		shift 2
		load_floor "$name" "$corpus"
		"$@" -json "$OUT/load/$name.json" >&2
		load_floor "$name" "$corpus"
	}
	load_floor
	local lg=("$OUT/bin/loadgen" -url "$DIST_URL" -server-pid "$dpid" -tenants 20 -services 100 -conns 8)
	log "warm-up (3s)"
	"${lg[@]}" -duration 3s -workers "$LOAD_WORKERS" >/dev/null
	log "saturation: closed loop, $LOAD_WORKERS workers, $LOAD_DURATION; CPU profile of the distributor meanwhile"
	local secs=${LOAD_DURATION%s}
	load_floor saturation
	$GO tool pprof -proto -seconds $((secs > 4 ? secs - 2 : secs)) "$DIST_URL/debug/pprof/profile" \
		>"$OUT/distributor.cpu.pb.gz" 2>"$OUT/logs/pprof.log" &
	local ppid=$!
	"${lg[@]}" -duration "$LOAD_DURATION" -workers "$LOAD_WORKERS" -json "$OUT/load/saturation.json" >&2
	wait $ppid || log "no CPU profile: see $OUT/logs/pprof.log"
	load_floor saturation
	log "half of saturation: open loop"
	costed half mix "${lg[@]}" -duration "$LOAD_DURATION" -mode open -rate-from "$OUT/load/saturation.json" -rate-factor 0.5
	for proto in grpc ingest; do
		log "$proto at saturation (5s)"
		costed "proto-$proto" mix "${lg[@]}" -protocol $proto -duration 5s -workers "$LOAD_WORKERS"
	done
	# The mix's 1 MB profile needs tens of CPU-ms on its own, which sets its
	# latency; agents mostly send profiles of tens of KB, measured alone here.
	log "agent-sized profiles (cpu, heap) only: saturation (5s), then half of it ($LOAD_DURATION)"
	costed saturation-small small "${lg[@]}" -profiles cpu,heap -duration 5s -workers "$LOAD_WORKERS"
	"$OUT/bin/loadgen" -probe "$DIST_URL/metrics" -probe-out "$OUT/load/half-small.metrics.before" || true
	costed half-small small "${lg[@]}" -profiles cpu,heap -duration "$LOAD_DURATION" -mode open \
		-rate-from "$OUT/load/saturation-small.json" -rate-factor 0.5
	"$OUT/bin/loadgen" -probe "$DIST_URL/metrics" -probe-out "$OUT/load/half-small.metrics.after" || true
	load_floor
	log "overload: writers stall 3s per push, open loop at 4x saturation (10s); heap and in-flight bytes watched"
	local stall=() unstall=()
	for i in $(seq 2 $((WRITERS + 1))); do
		stall+=(-post-before "http://$NET.$i:$HTTP_PORT/control/latency?duration=3s")
		unstall+=(-post-after "http://$NET.$i:$HTTP_PORT/control/latency?duration=0s")
	done
	(sleep 7 && $GO tool pprof -proto "$DIST_URL/debug/pprof/heap" >"$OUT/distributor.heap.pb.gz" 2>>"$OUT/logs/pprof.log") &
	local hpid=$!
	# The distributor on a CPU of its own: on a small machine the load
	# generator and the fake writers otherwise take its CPU, their delays
	# count as its latency and their cache traffic as its cost. It gets the
	# last CPU (GOMAXPROCS 1), everything else the others: the mix at
	# saturation over each protocol, then the agent-sized profiles at
	# saturation and at half of it, with its own histograms read before and
	# after the half-load run (server-side latency).
	isolated_runs() {
		local ncpu last rest
		ncpu=$(nproc)
		if [ "$ncpu" -lt 2 ] || ! command -v taskset >/dev/null; then
			log "isolated runs: need 2+ CPUs and taskset; skipped"
			return 0
		fi
		last=$((ncpu - 1)) rest="0-$((ncpu - 2))"
		log "isolated runs: distributor restarted on CPU $last (GOMAXPROCS 1), load generator and writers on CPU $rest"
		kill -KILL "$dpid" 2>/dev/null || true
		wait "$dpid" 2>/dev/null || true
		for p in "${writer_pids[@]}"; do taskset -a -p -c "$rest" "$p" >/dev/null; done
		dist_cpus=$last
		start_distributor GOMAXPROCS=1 || return 1
		dist_cpus=""
		local lgi=(taskset -c "$rest" "$OUT/bin/loadgen" -url "$DIST_URL" -server-pid "$dpid" -tenants 20 -services 100 -conns 8)
		"${lgi[@]}" -duration 3s -workers "$LOAD_WORKERS" >/dev/null
		for proto in connect grpc ingest; do
			costed "isolated-$proto" mix "${lgi[@]}" -protocol $proto -duration 5s -workers "$LOAD_WORKERS"
		done
		costed saturation-small-isolated small "${lgi[@]}" -profiles cpu,heap -duration 5s -workers "$LOAD_WORKERS"
		"$OUT/bin/loadgen" -probe "$DIST_URL/metrics" -probe-out "$OUT/load/half-small-isolated.metrics.before" || true
		costed half-small-isolated small "${lgi[@]}" -profiles cpu,heap -duration "$LOAD_DURATION" -mode open \
			-rate-from "$OUT/load/saturation-small-isolated.json" -rate-factor 0.5
		"$OUT/bin/loadgen" -probe "$DIST_URL/metrics" -probe-out "$OUT/load/half-small-isolated.metrics.after" || true
		for p in "${writer_pids[@]}"; do taskset -a -p -c "0-$last" "$p" >/dev/null; done
	}
	overload() { # result name
		"${lg[@]}" -duration 10s -mode open -rate-from "$OUT/load/saturation.json" -rate-factor 4 -max-inflight 4000 \
			-timeout 30s "${stall[@]}" "${unstall[@]}" -watch-metrics "$DIST_URL/metrics" \
			-json "$OUT/load/$1.json" >&2
	}
	overload overload
	wait $hpid || log "no heap profile: see $OUT/logs/pprof.log"
	isolated_runs
	# Without a Go memory limit the heap holds up to GOGC's worth of garbage
	# on top of what the budget admits. With the Go limit at 90% of the budget
	# (the share the distributor gives Go of a container limit: the rest is
	# for what the runtime holds besides the heap) the GC keeps the heap under
	# the budget; the budget's charges over-estimate live memory, so the GC
	# does not thrash.
	local memlimit=$((INFLIGHT_MIB * 9 / 10))
	log "overload again, distributor restarted with GOMEMLIMIT=${memlimit}MiB (90% of the in-flight limit)"
	kill -KILL "$dpid" 2>/dev/null || true
	wait "$dpid" 2>/dev/null || true
	start_distributor GOMEMLIMIT="${memlimit}MiB" || return 1
	lg=("$OUT/bin/loadgen" -url "$DIST_URL" -server-pid "$dpid" -tenants 20 -services 100 -conns 8)
	"${lg[@]}" -duration 3s -workers "$LOAD_WORKERS" >/dev/null
	overload overload-memlimit
	if [ -s "$OUT/distributor.heap.pb.gz" ]; then
		$GO tool pprof -top -sample_index=inuse_space -nodecount=20 "$OUT/bin/distributor" "$OUT/distributor.heap.pb.gz" 2>/dev/null \
			| sed -n '/^Showing nodes/,$p' >"$OUT/distributor.heap.txt" || true
	fi
	if [ -s "$OUT/distributor.cpu.pb.gz" ]; then
		$GO tool pprof -top -nodecount=30 "$OUT/bin/distributor" "$OUT/distributor.cpu.pb.gz" 2>/dev/null \
			| sed -n '/^Showing nodes/,$p' >"$OUT/distributor.top.txt" || true
		echo >>"$OUT/distributor.top.txt"
		$GO tool pprof -top -cum -nodecount=35 "$OUT/bin/distributor" "$OUT/distributor.cpu.pb.gz" 2>/dev/null \
			| sed -n '/^Showing nodes/,$p' >>"$OUT/distributor.top.txt" || true
	fi
}
FAKEWRITER_FLAGS=${FAKEWRITER_FLAGS:-}
DISTRIBUTOR_FLAGS=${DISTRIBUTOR_FLAGS:-}
load_run || log "load run incomplete; the report says so"
cleanup
pids=()

echo "load average at end:   $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
extra=()
[ -s "$OUT/distributor.top.txt" ] && extra+=(-top "$OUT/distributor.top.txt")
[ -s "$OUT/distributor.heap.txt" ] && extra+=(-heap "$OUT/distributor.heap.txt")
[ -s "$OUT/load-floor.txt" ] && extra+=(-load-floor "$OUT/load-floor.txt")
"$OUT/bin/benchreport" -bench "$OUT/bench.txt" -load "$OUT/load" -machine "$OUT/machine.txt" "${extra[@]}" -out "$OUT/report.md"
log "report: $OUT/report.md"
echo "$OUT/report.md"
