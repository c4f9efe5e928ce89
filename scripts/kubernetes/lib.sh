# shellcheck shell=bash
# Shared by the cluster scripts (sourced, not run): versions, paths, ports and small helpers.
# shellcheck disable=SC2034 # the variables are the sourcing scripts'
# Build artefacts are cached in $K8S_CACHE (kept); a running cluster's state lives in $K8S_STATE (stop.sh removes it).

K8S_VERSION=v1.34.4
RURIKO_CACHE="${RURIKO_CACHE:-$HOME/.cache/ruriko}"
K8S_CACHE="$RURIKO_CACHE/kubernetes-$K8S_VERSION"
K8S_BIN="$K8S_CACHE/bin"
K8S_STATE="${RURIKO_KUBE_STATE:-$RURIKO_CACHE/kubernetes-run}"
K8S_KUBECONFIG="$K8S_STATE/admin.kubeconfig"
K8S_CONTAINERD_SOCK="$K8S_STATE/containerd/containerd.sock"
K8S_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Everything listens on 127.0.0.1 only; these are below the ephemeral range (32768+) that tests' port-0 servers use.
K8S_API_PORT="${RURIKO_KUBE_API_PORT:-6443}"
K8S_ETCD_PORT=2379       # client
K8S_ETCD_PEER_PORT=2380  # unused by a one-member cluster, yet etcd must listen
K8S_KUBELET_PORT=10250   # logs, exec, port-forward (the API server dials localhost:10250)

# The pod network: its own bridge and a 10.x range (Docker's default pools are 172.17–31.x and 192.168.x).
K8S_BRIDGE=ruriko-kube0
K8S_POD_CIDR=10.89.0.0/24
K8S_SERVICE_CIDR=10.96.0.0/24

# The pods' cgroups go under this parent (the kubelet's cgroupRoot), apart from Docker's and any other kubelet's.
K8S_CGROUP=ruriko-kube

K8S_NODE=localhost
K8S_STORAGE_CLASS=ruriko-local
K8S_PAUSE_IMAGE=ruriko.local/pause:3.10

# The daemons start.sh runs, in start order (stop.sh stops first those that make or place pods).
K8S_DAEMONS=(containerd etcd apiserver controller-manager scheduler kubelet provisioner)

k8s_log() { printf '[kubernetes %s] %s\n' "$(date +%T)" "$*" >&2; }
k8s_die() { k8s_log "error: $*"; exit 1; }

# k8s_alive PID: running, and not a zombie (the daemons' parent is init once start.sh exits, and an init that reaps
# late leaves them as zombies for a while, which `kill -0` still finds).
k8s_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$(cut -d' ' -f1 <<<"${stat##*) }")" != Z ]
}

# k8s_pid NAME: the pid of a daemon start.sh started, if it is still running (empty otherwise).
k8s_pid() {
  local f="$K8S_STATE/pids/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && k8s_alive "$pid"; then echo "$pid"; fi
}

# k8s_cgroup_dirs: the cgroup folders of $K8S_CGROUP, one per v1 hierarchy or the one of cgroup v2.
k8s_cgroup_dirs() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo "/sys/fs/cgroup/$K8S_CGROUP"
  else
    for h in /sys/fs/cgroup/*; do
      [ -L "$h" ] || [ ! -f "$h/cgroup.procs" ] || echo "$h/$K8S_CGROUP"
    done
  fi
}

k8s_kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$K8S_KUBECONFIG" "$@"; }

# k8s_wait SECONDS WHAT COMMAND...: runs COMMAND until it succeeds, failing after SECONDS (a bound, not a pace).
k8s_wait() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { k8s_log "$what: not after ${seconds}s"; return 1; }
    sleep 0.3
  done
}
