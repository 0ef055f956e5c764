#!/usr/bin/env bash
# `make demo` / `make demo-down`: pyrodist end to end on this machine, with no
# cluster and no Docker (see hack/demo/main.go for what runs).
#   hack/demo.sh up     build what is missing, start everything, push samples, print routing
#   hack/demo.sh down   stop every process the demo started (by PID) and delete .demo/
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools=hack/build-tools.sh
state=${DEMO_DIR:-.demo}

case ${1:-} in
up)
	missing=()
	for c in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok metrics-server helm; do
		[ -x "$($tools path "$c")" ] || missing+=("$c")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "==> first run: building ${missing[*]} from pinned Go modules."
		echo "    This usually takes 15-20 minutes on 2 cores (about 5 on 8); later runs start in ~20 s."
		echo "    Binaries are cached in ${PYRODIST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrodist}."
		start=$(date +%s)
		$tools k8s etcd kwok metrics-server helm
		echo "==> tools built in $(($(date +%s) - start))s"
	fi
	mkdir -p bin
	go build -o bin/demo ./hack/demo
	exec bin/demo -dir "$state" up
	;;
down)
	if [ -x bin/demo ]; then exec bin/demo -dir "$state" down; fi
	go run ./hack/demo -dir "$state" down
	;;
*)
	echo "usage: $0 up|down" >&2
	exit 2
	;;
esac
