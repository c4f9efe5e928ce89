#!/usr/bin/env bash
# kwok (sigs.k8s.io/kwok): fake nodes and pods on the test cluster's API server, for the Kubernetes benchmark
# (bench/kubernetes-scale.ts). Installs the binary into the cache with `go install` from the Go module proxy
# (instant once cached), then, with `start`, runs it against the kubeconfig given, managing the nodes it is told
# to (label type=kwok) and their pods; `stop` ends it. Stdout of `install`: the binary's path.
#   bash scripts/kubernetes/kwok.sh install
#   bash scripts/kubernetes/kwok.sh start KUBECONFIG   # then create nodes labelled type=kwok
#   bash scripts/kubernetes/kwok.sh stop
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KWOK_VERSION=v0.8.0
KWOK_CACHE="$RURIKO_CACHE/kwok-$KWOK_VERSION"
KWOK_BIN="$KWOK_CACHE/bin/kwok"
KWOK_PID="$KWOK_CACHE/kwok.pid"

install_kwok() {
  if [ -x "$KWOK_BIN" ]; then echo "$KWOK_BIN"; return 0; fi
  local go
  go=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$go" ] || k8s_die "no Go toolchain to install kwok with"
  k8s_log "installing kwok $KWOK_VERSION into $KWOK_CACHE (go install, a few minutes when cold)"
  mkdir -p "$KWOK_CACHE"
  GOBIN="$KWOK_CACHE/bin" GOMODCACHE="$KWOK_CACHE/go/mod" GOCACHE="$KWOK_CACHE/go/build" GOTOOLCHAIN=auto CGO_ENABLED=0 \
    GOFLAGS="-modcacherw -trimpath" nice -n 15 "$go" install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  echo "$KWOK_BIN"
}

case "${1:-}" in
  install) install_kwok ;;
  start)
    kubeconfig=${2:?usage: kwok.sh start KUBECONFIG}
    bin=$(install_kwok)
    if [ -f "$KWOK_PID" ] && k8s_alive "$(cat "$KWOK_PID")"; then k8s_log "kwok already running"; exit 0; fi
    # Only nodes labelled type=kwok are kwok's (the real kubelet's node `localhost` is left alone), and the
    # default stages: a pod bound to such a node is reported Running at once, deleted ones go away. Node and pod
    # addresses on loopback: whatever tries to reach a fake pod meets a refused connection, not the network.
    # kwok without stages does nothing: its own "fast" stages, from the module just installed (node initialise and
    # heartbeat, pod ready, complete, delete), in one config file.
    stages="$KWOK_CACHE/go/mod/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
    config="$KWOK_CACHE/stages.yaml"
    for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      cat "$stages/$f"
      echo "---"
    done >"$config"
    setsid "$bin" --kubeconfig "$kubeconfig" -c "$config" --manage-all-nodes=false --manage-nodes-with-label-selector=type=kwok \
      --server-address=127.0.0.1:0 --node-ip=127.0.0.1 --cidr=127.90.0.0/16 >"$KWOK_CACHE/kwok.log" 2>&1 </dev/null &
    echo $! >"$KWOK_PID"
    k8s_log "kwok started (pid $!, log $KWOK_CACHE/kwok.log)"
    ;;
  stop)
    if [ -f "$KWOK_PID" ]; then
      pid=$(cat "$KWOK_PID")
      if k8s_alive "$pid"; then kill "$pid"; fi
      rm -f "$KWOK_PID"
    fi
    ;;
  *) echo "usage: kwok.sh install | start KUBECONFIG | stop" >&2; exit 2 ;;
esac
