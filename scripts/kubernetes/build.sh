#!/usr/bin/env bash
# Builds the test cluster's binaries (Kubernetes v1.34.4 from the Go module proxy, etcd, the local volume
# provisioner) and its pause image into $K8S_CACHE. Instant when the cache matches this folder's sources; cold it
# takes minutes (see README.md). Go: $GO if set, else `go` on PATH, /usr/local/go, or .ci/run's cached toolchain;
# one older than the go.mod's `go` line fetches the right one itself (GOTOOLCHAIN=auto).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl etcd local-volume-provisioner)

# The inputs the cache answers for: the build module, the Go sources, this script, the pause image's name.
inputs_digest() {
  (
    cd "$K8S_SCRIPTS"
    cat go.mod go.sum tools.go local-volume-provisioner/*.go pause/*.go build.sh
    echo "$K8S_PAUSE_IMAGE"
  ) | sha256sum | cut -d' ' -f1
}

cached() {
  [ "$(cat "$K8S_BIN/.inputs" 2>/dev/null)" = "$1" ] || return 1
  for b in "${BINARIES[@]}"; do [ -x "$K8S_BIN/$b" ] || return 1; done
  [ -f "$K8S_CACHE/images/pause.tar" ]
}

find_go() {
  local candidate
  for candidate in "${GO:-}" "$(command -v go || true)" /usr/local/go/bin/go "$RURIKO_CACHE/go-toolchain/bin/go"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" env GOVERSION >/dev/null 2>&1 && { echo "$candidate"; return 0; }
  done
  return 1
}

# One build at a time (.ci/run may build in the background while start.sh is asked for a cluster): the second
# waits, then finds the cache filled.
mkdir -p "$K8S_CACHE"
exec 8>"$K8S_CACHE/build.lock"
flock 8

digest=$(inputs_digest)
if cached "$digest"; then
  k8s_log "binaries cached in $K8S_BIN"
  exit 0
fi

go=$(find_go) || k8s_die "no Go toolchain: set GO, put go on PATH, or run .ci/run (its go_tool fetches one)"
command -v docker >/dev/null || k8s_die "docker is needed to package the pause image"
k8s_log "building Kubernetes $K8S_VERSION with $("$go" env GOVERSION) into $K8S_BIN (minutes when cold)"
began=$SECONDS

# A private module and build cache beside the binaries: removable together, and a rebuild after a change to
# this folder only recompiles what changed.
export GOMODCACHE="$K8S_CACHE/go/mod" GOCACHE="$K8S_CACHE/go/build" GOTOOLCHAIN=auto CGO_ENABLED=0
export GOFLAGS="-modcacherw -buildvcs=false -mod=readonly -trimpath"
# Without the -X flags the binaries call themselves v0.0.0-master, and kubectl warns about the skew.
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

out="$K8S_CACHE/bin.new"
rm -rf "$out"
mkdir -p "$out" "$K8S_CACHE/images"
cd "$K8S_SCRIPTS"
# One `go build` for all: the packages they share compile once.
"$go" build -ldflags "$ldflags" -o "$out/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3 \
  ./local-volume-provisioner ./pause
mv "$out/server" "$out/etcd" # go names go.etcd.io/etcd/server/v3 after "server"
k8s_log "compiled in $((SECONDS - began))s"

# The sandbox image: the pause binary alone, via docker (import, save) into a tar that start.sh imports into the
# cluster's containerd. Removed from Docker afterwards: only the tar is kept.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$out/pause" "$stage/pause"
tar -C "$stage" -cf - pause | docker import -c 'ENTRYPOINT ["/pause"]' -c 'USER 65535:65535' - "$K8S_PAUSE_IMAGE" >/dev/null
docker save "$K8S_PAUSE_IMAGE" -o "$K8S_CACHE/images/pause.tar.new"
docker rmi -f "$K8S_PAUSE_IMAGE" >/dev/null
mv "$K8S_CACHE/images/pause.tar.new" "$K8S_CACHE/images/pause.tar"

echo "$digest" >"$out/.inputs"
rm -rf "$K8S_BIN"
mv "$out" "$K8S_BIN"
k8s_log "built in $((SECONDS - began))s: $(cd "$K8S_BIN" && du -sh . | cut -f1) of binaries in $K8S_BIN"
