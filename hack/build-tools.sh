#!/usr/bin/env bash
# Builds the pinned tools the project needs (Kubernetes control-plane binaries,
# etcd, controller-gen, helm, kwok, metrics-server) from Go modules, into a
# versioned cache outside the repo. There are no prebuilt downloads on our
# machines, so everything is compiled from the modules pinned in hack/tools/*.
# A binary already in the cache is never rebuilt.
#
#   hack/build-tools.sh envtest              kube-apiserver + etcd (what envtest needs)
#   hack/build-tools.sh k8s etcd helm ...    named components
#   hack/build-tools.sh path <component>     print where a component's binary lives
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools=$root/hack/tools
cache=${PYRODIST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pyrodist}
goos=$(go env GOOS)
goarch=$(go env GOARCH)

version_of() { # module version pinned in a tool module's go.mod
	(cd "$tools/$1" && go list -m -f '{{.Version}}' "$2")
}

KUBE_VERSION=$(version_of k8s k8s.io/kubernetes)
kdir=$cache/k8s/${KUBE_VERSION#v}-$goos-$goarch

export CGO_ENABLED=0
# Keep the same flags everywhere: they are part of the build cache keys.
bflags=(-trimpath)

timed() {
	local what=$1 s
	shift
	s=$(date +%s)
	echo "[tools] building $what (first time only; this can take several minutes on 2 cores)" >&2
	"$@"
	echo "[tools] $what built in $(($(date +%s) - s))s" >&2
}

k8s_ldflags() {
	local maj min date ld="-s -w"
	maj=$(echo "${KUBE_VERSION#v}" | cut -d. -f1)
	min=$(echo "${KUBE_VERSION#v}" | cut -d. -f2)
	date=$(cd "$tools/k8s" && go list -m -f '{{.Time.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=$maj -X $p.gitMinor=$min -X $p.gitTreeState=clean -X $p.buildDate=$date"
	done
	echo "$ld"
}

# build_k8s BIN... : kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
build_k8s() {
	local want=() b
	for b in "$@"; do [ -x "$kdir/$b" ] || want+=("k8s.io/kubernetes/cmd/$b"); done
	[ ${#want[@]} -gt 0 ] || return 0
	mkdir -p "$kdir"
	(cd "$tools/k8s" && timed "${want[*]##*/} $KUBE_VERSION" \
		go build "${bflags[@]}" -tags selinux,notest,grpcnotrace -ldflags "$(k8s_ldflags)" -o "$kdir/" "${want[@]}")
}

build_etcd() {
	[ -x "$kdir/etcd" ] && return 0
	mkdir -p "$kdir"
	(cd "$tools/etcd" && timed "etcd $(version_of etcd go.etcd.io/etcd/server/v3)" \
		go build "${bflags[@]}" -ldflags "-s -w" -o "$kdir/etcd" go.etcd.io/etcd/server/v3)
}

# simple TOOL MODULE PKG [LDFLAGS]: one binary in $cache/TOOL-VERSION/
simple() {
	local tool=$1 mod=$2 pkg=$3 ld=${4:-} v
	v=$(version_of "$tool" "$mod")
	local out=$cache/$tool-$v/$(basename "$pkg")
	[ -x "$out" ] && return 0
	mkdir -p "$(dirname "$out")"
	(cd "$tools/$tool" && timed "$tool $v" go build "${bflags[@]}" -ldflags "-s -w $ld" -o "$out" "$pkg")
}

helm_ldflags() {
	local v min
	v=$(version_of helm helm.sh/helm/v3)
	# helm defaults .Capabilities.KubeVersion to an old release unless told at build time.
	min=$(cd "$tools/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)
	min=${min#v0.}
	min=${min%%.*}
	local ld="-X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
	for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		ld="$ld -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$min"
	done
	echo "$ld"
}

path_of() {
	case $1 in
	k8s-dir) echo "$kdir" ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | etcd) echo "$kdir/$1" ;;
	controller-gen) echo "$cache/controller-gen-$(version_of controller-gen sigs.k8s.io/controller-tools)/controller-gen" ;;
	helm) echo "$cache/helm-$(version_of helm helm.sh/helm/v3)/helm" ;;
	kwok) echo "$cache/kwok-$(version_of kwok sigs.k8s.io/kwok)/kwok" ;;
	kwok-src) (cd "$tools/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok) ;;
	metrics-server) echo "$cache/metrics-server-$(version_of metrics-server sigs.k8s.io/metrics-server)/metrics-server" ;;
	*)
		echo "unknown component $1" >&2
		exit 2
		;;
	esac
}

build() {
	case $1 in
	envtest)
		build_etcd
		build_k8s kube-apiserver
		;;
	k8s) build_k8s kube-apiserver kube-controller-manager kube-scheduler kubectl ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) build_k8s "$1" ;;
	etcd) build_etcd ;;
	controller-gen) simple controller-gen sigs.k8s.io/controller-tools sigs.k8s.io/controller-tools/cmd/controller-gen ;;
	helm) simple helm helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm "$(helm_ldflags)" ;;
	kwok) simple kwok sigs.k8s.io/kwok sigs.k8s.io/kwok/cmd/kwok ;;
	metrics-server)
		simple metrics-server sigs.k8s.io/metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server \
			"-X k8s.io/client-go/pkg/version.gitVersion=$(version_of metrics-server sigs.k8s.io/metrics-server)"
		;;
	*)
		echo "unknown component $1" >&2
		exit 2
		;;
	esac
}

if [ "${1:-}" = path ]; then
	path_of "$2"
	exit 0
fi
for c in "${@:-envtest}"; do build "$c"; done
