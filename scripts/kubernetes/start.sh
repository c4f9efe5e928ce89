#!/usr/bin/env bash
# Starts the one-node test cluster on loopback: its own containerd, etcd, the API server, controller manager,
# scheduler, a real kubelet and the local volume provisioner. Builds first if the cache is cold (build.sh).
# Idempotent: a healthy cluster started from the same scripts and binaries is reused; anything else (a crashed
# daemon, a half-started cluster, changed scripts, --restart) is stopped cleanly and started afresh.
# Prints the admin kubeconfig's path on stdout, and nothing else (progress goes to stderr):
#   export KUBECONFIG=$(bash scripts/kubernetes/start.sh)
set -Eeuo pipefail
source "$(dirname "$0")/lib.sh"

restart=0
case "${1:-}" in
  "") ;;
  --restart) restart=1 ;;
  *) k8s_die "usage: start.sh [--restart]" ;;
esac

mkdir -p "$RURIKO_CACHE"
exec 9>"$RURIKO_CACHE/kubernetes.lock"
flock 9 # one start or stop at a time; stop.sh below runs under this lock
export K8S_LOCK_HELD=1

# What the running cluster was started from: reused only when this is unchanged.
start_digest() {
  (
    cd "$K8S_SCRIPTS"
    cat start.sh lib.sh containerd.toml "$K8S_BIN/.inputs" 2>/dev/null
  ) | sha256sum | cut -d' ' -f1
}

node_ready() {
  [ "$(k8s_kubectl get node "$K8S_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

healthy() {
  local d
  for d in "${K8S_DAEMONS[@]}"; do [ -n "$(k8s_pid "$d")" ] || return 1; done
  [ "$(cat "$K8S_STATE/started-from" 2>/dev/null)" = "$(start_digest)" ] &&
    k8s_kubectl get --raw /readyz >/dev/null 2>&1 && node_ready
}

[ "$(id -u)" = 0 ] || k8s_die "must run as root (a kubelet manages mounts, cgroups and network namespaces)"
# unix socket paths are limited to 107 bytes (containerd's ttrpc socket is the longest: .sock.ttrpc).
[ "${#K8S_CONTAINERD_SOCK}" -le 101 ] || k8s_die "state path too long for containerd's sockets: set RURIKO_KUBE_STATE to a shorter folder"
bash "$K8S_SCRIPTS/build.sh" >&2 # instant when cached; first, so that a rebuild restarts a running cluster

if [ "$restart" = 0 ] && healthy; then
  k8s_log "reusing the running cluster"
  echo "$K8S_KUBECONFIG"
  exit 0
fi
if [ -e "$K8S_STATE" ]; then
  k8s_log "stopping the previous cluster first"
  bash "$K8S_SCRIPTS/stop.sh"
fi

# --- prerequisites -------------------------------------------------------------------------------------------
if [ ! -x /usr/lib/cni/bridge ] || [ ! -x /usr/lib/cni/firewall ]; then
  command -v apt-get >/dev/null || k8s_die "CNI plugins missing in /usr/lib/cni"
  k8s_log "installing containernetworking-plugins"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins </dev/null >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins </dev/null >/dev/null; }
fi
for tool in containerd containerd-shim-runc-v2 runc ctr openssl iptables ip ss flock; do
  command -v "$tool" >/dev/null || k8s_die "$tool not found (Debian: apt-get install docker.io containernetworking-plugins)"
done

for port in "$K8S_API_PORT" "$K8S_ETCD_PORT" "$K8S_ETCD_PEER_PORT" "$K8S_KUBELET_PORT"; do
  holder=$(ss -Hltnp "sport = :$port" 2>/dev/null | head -1)
  [ -z "$holder" ] || k8s_die "port $port is taken (another cluster?): $holder"
done
ip link show "$K8S_BRIDGE" >/dev/null 2>&1 && k8s_die "bridge $K8S_BRIDGE exists: another cluster runs, or stop.sh did not finish"

# --- from here on, a failure stops whatever started, keeping the logs ------------------------------------------
on_failure() {
  local logs
  logs=$(ls -t "$K8S_STATE"/logs/*.log 2>/dev/null | head -3)
  for f in $logs; do k8s_log "last lines of $f:"; tail -15 "$f" >&2; done
  k8s_log "start failed; stopping what started (logs are kept in $RURIKO_CACHE/kubernetes-last-logs)"
  bash "$K8S_SCRIPTS/stop.sh" || true
}
on_exit() {
  local status=$?
  [ "$status" = 0 ] || on_failure
}
trap on_exit EXIT

began=$SECONDS
phase() { k8s_log "$1 ($((SECONDS - began))s)"; }
S="$K8S_STATE"
mkdir -p "$S"/{pki,logs,pids,kubelet,cni/net.d,volumes}
chmod 700 "$S"

# run_daemon NAME COMMAND...: in its own session (it outlives this script and its process group), no stdin.
# setsid execs in place (a background job of a script is no group leader), so $! is the daemon's pid.
run_daemon() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$S/logs/$name.log" 2>&1 9>&- & # 9: the lock, which must not outlive this script
  echo $! >"$S/pids/$name.pid"
}

# await DAEMONS SECONDS WHAT COMMAND...: runs COMMAND until it succeeds; fails after SECONDS (a bound, not a pace),
# or at once when one of DAEMONS (comma-separated) has exited.
await() {
  local daemons=$1 seconds=$2 what=$3 d
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    for d in ${daemons//,/ }; do [ -n "$(k8s_pid "$d")" ] || { k8s_log "$what: $d exited"; return 1; }; done
    [ "$SECONDS" -lt "$deadline" ] || { k8s_log "$what: not after ${seconds}s"; return 1; }
    sleep 0.3
  done
}

# --- credentials: a CA for the API server's and its kubelet client's certificates, random tokens -------------
cd "$S/pki"
ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# cert NAME SUBJECT EXTENSIONS: a certificate signed by the CA.
cert() {
  ec_key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" 2>/dev/null |
    openssl x509 -req -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -out "$1.crt" -extfile <(printf '%b' "$3") 2>/dev/null
}
ec_key ca.key
openssl req -x509 -new -key ca.key -subj /CN=ruriko-test-cluster-ca -days 365 -out ca.crt \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
cert apiserver /CN=kube-apiserver \
  "subjectAltName=IP:127.0.0.1,IP:${K8S_SERVICE_CIDR%.*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth"
cert kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
ec_key sa.key
openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
admin_token=$(openssl rand -hex 24)
kubelet_token=$(openssl rand -hex 24)
printf '%s\n' "$admin_token,admin,admin-uid,system:masters" "$kubelet_token,system:node:$K8S_NODE,kubelet-uid,system:nodes" >tokens.csv
chmod 600 ./*.key tokens.csv
# kubeconfig FILE TOKEN
kubeconfig() {
  local k=("$K8S_BIN/kubectl" --kubeconfig "$1" config)
  "${k[@]}" set-cluster ruriko-test --server="https://127.0.0.1:$K8S_API_PORT" --certificate-authority="$S/pki/ca.crt" --embed-certs >/dev/null
  "${k[@]}" set-credentials user --token="$2" >/dev/null
  "${k[@]}" set-context ruriko-test --cluster=ruriko-test --user=user >/dev/null
  "${k[@]}" use-context ruriko-test >/dev/null
  chmod 600 "$1"
}
kubeconfig "$K8S_KUBECONFIG" "$admin_token"
kubeconfig "$S/kubelet.kubeconfig" "$kubelet_token"
cd "$S"

# --- containerd and the pod network ---------------------------------------------------------------------------
sed -e "s#@STATE@#$S#g" -e "s#@PAUSE@#$K8S_PAUSE_IMAGE#g" "$K8S_SCRIPTS/containerd.toml" >"$S/containerd.toml"
# bridge: the pods' network, no masquerade (pods have no business off this host). firewall: Docker sets the
# FORWARD policy to DROP, and with bridge-nf-call-iptables pod-to-pod frames cross FORWARD too; this plugin
# accepts traffic of the pods it wires up (in its own CNI-FORWARD chain) and nothing else.
cat >"$S/cni/net.d/10-ruriko.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "ruriko-kube", "plugins": [
  {"type": "bridge", "bridge": "$K8S_BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$S/cni/ipam", "ranges": [[{"subnet": "$K8S_POD_CIDR"}]]}},
  {"type": "firewall", "backend": "iptables"}
]}
EOF
run_daemon containerd containerd --config "$S/containerd.toml"
containerd_up() { [ -S "$K8S_CONTAINERD_SOCK" ] && ctr -a "$K8S_CONTAINERD_SOCK" version; } # ctr waits 10 s for a missing socket
await containerd 60 "containerd" containerd_up
ctr -a "$K8S_CONTAINERD_SOCK" -n k8s.io images import "$K8S_CACHE/images/pause.tar" >/dev/null
phase "containerd ready, pause image imported"

# --- control plane -------------------------------------------------------------------------------------------
# No fsync: a test cluster's etcd loses nothing that matters on a crash, and fsync dominates on a busy disk.
run_daemon etcd "$K8S_BIN/etcd" --name ruriko-test --data-dir "$S/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
  --initial-cluster "ruriko-test=http://127.0.0.1:$K8S_ETCD_PEER_PORT"
# The API server advertises 127.0.0.1, which no Endpoints object may hold: no reconciler for the `kubernetes`
# Service (pods reach the API server on the host network, see README.md).
run_daemon apiserver "$K8S_BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$K8S_ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$K8S_API_PORT" --endpoint-reconciler-type=none \
  --tls-cert-file="$S/pki/apiserver.crt" --tls-private-key-file="$S/pki/apiserver.key" --client-ca-file="$S/pki/ca.crt" \
  --token-auth-file="$S/pki/tokens.csv" --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$S/pki/sa.pub" \
  --service-account-signing-key-file="$S/pki/sa.key" --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
  --kubelet-preferred-address-types=Hostname --kubelet-client-certificate="$S/pki/kubelet-client.crt" \
  --kubelet-client-key="$S/pki/kubelet-client.key"
await etcd,apiserver 180 "API server ready" k8s_kubectl get --raw /readyz
phase "API server ready"
# No serving ports (--secure-port=0): nothing here scrapes them, and fewer ports are fewer collisions. The API
# rate of a large cluster's controller manager (the default, 20/s, makes 1,000 StatefulSets a matter of minutes
# for the cluster alone: the Kubernetes benchmark, bench/kubernetes-scale.ts, runs 1,000 on kwok nodes).
run_daemon controller-manager "$K8S_BIN/kube-controller-manager" --kubeconfig="$K8S_KUBECONFIG" --secure-port=0 \
  --kube-api-qps=200 --kube-api-burst=400 --concurrent-statefulset-syncs=20 \
  --leader-elect=false --use-service-account-credentials=false --root-ca-file="$S/pki/ca.crt" \
  --service-account-private-key-file="$S/pki/sa.key" --controllers='*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle' \
  --flex-volume-plugin-dir="$S/controller-manager/volume-plugins" # else it makes /usr/libexec/kubernetes/…
run_daemon scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$K8S_KUBECONFIG" --secure-port=0 --leader-elect=false

# --- the node --------------------------------------------------------------------------------------------------
# Everything the kubelet writes stays under $S (root dir, pod logs, volume plugins; only its device-plugin socket
# has a fixed place, /var/lib/kubelet/device-plugins), its pods' cgroups under /$K8S_CGROUP. It listens on 127.0.0.1
# only and answers the API server's client certificate (logs, exec, port-forward). cgroup v1 is still allowed
# (failCgroupV1) since this machine has it; iptables util chains are Docker's business here.
cat >"$S/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $K8S_KUBELET_PORT
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $S/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: /$K8S_CGROUP
containerRuntimeEndpoint: unix://$K8S_CONTAINERD_SOCK
failSwapOn: false
failCgroupV1: false
makeIPTablesUtilChains: false
resolvConf: /etc/resolv.conf
podLogsDir: $S/kubelet/pod-logs
volumePluginDir: $S/kubelet/volume-plugins
# A shared CI disk: evict only when it is really full, and never garbage-collect the imported images (they cannot
# be pulled back).
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
# The kubelet's cgroupRoot must exist in every hierarchy; cpuset's needs its CPUs and memory nodes before use.
for d in $(k8s_cgroup_dirs); do
  mkdir -p "$d"
  if [ -f "$d/cpuset.cpus" ]; then
    cat "$d/../cpuset.cpus" >"$d/cpuset.cpus"
    cat "$d/../cpuset.mems" >"$d/cpuset.mems"
  fi
done
run_daemon kubelet "$K8S_BIN/kubelet" --config="$S/kubelet/config.yaml" --kubeconfig="$S/kubelet.kubeconfig" \
  --root-dir="$S/kubelet/root" --cert-dir="$S/kubelet/pki" --hostname-override="$K8S_NODE" --v=1
await containerd,kubelet 180 "node $K8S_NODE Ready" node_ready
phase "node Ready"

# --- storage: a default StorageClass served by the local volume provisioner ---------------------------------------
k8s_kubectl apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $K8S_STORAGE_CLASS
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: ruriko.dev/local-dir
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
EOF
run_daemon provisioner "$K8S_BIN/local-volume-provisioner" --kubeconfig="$K8S_KUBECONFIG" --base-dir="$S/volumes" --node="$K8S_NODE"

await controller-manager 120 "default service account" k8s_kubectl -n default get serviceaccount default
for d in "${K8S_DAEMONS[@]}"; do [ -n "$(k8s_pid "$d")" ] || { k8s_log "$d exited"; false; }; done
start_digest >"$S/started-from"
trap - EXIT
phase "cluster ready; kubeconfig $K8S_KUBECONFIG"
echo "$K8S_KUBECONFIG"
