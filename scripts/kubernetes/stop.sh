#!/usr/bin/env bash
# Stops the test cluster start.sh started and leaves the host as it was: pods torn down through the kubelet
# (network namespaces, CNI rules, mounts), the daemons stopped by their recorded pids, then whatever a crashed
# daemon left behind removed (mounts, network namespaces, the bridge, iptables rules, cgroups), and the state
# folder deleted. The build cache stays; the daemons' logs are kept in $RURIKO_CACHE/kubernetes-last-logs.
# Safe to run at any time, any number of times; only touches what carries this cluster's names and addresses.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

if [ -z "${K8S_LOCK_HELD:-}" ]; then
  mkdir -p "$RURIKO_CACHE"
  exec 9>"$RURIKO_CACHE/kubernetes.lock"
  flock 9
fi
S="$K8S_STATE"
began=$SECONDS
SOCK="$K8S_CONTAINERD_SOCK"

# stop_daemon NAME: SIGTERM, then SIGKILL if it is still there after 30 s.
stop_daemon() {
  local pid
  pid=$(k8s_pid "$1")
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 150); do k8s_alive "$pid" || return 0; sleep 0.2; done
  k8s_log "$1 ($pid) ignored SIGTERM; killing it"
  kill -KILL "$pid" 2>/dev/null
  sleep 0.5
}

if [ -d "$S" ]; then
  # Nothing may recreate or reschedule pods while they go.
  for d in provisioner controller-manager scheduler; do stop_daemon "$d"; done
  # Pods deleted through the API: the kubelet stops them through the runtime, which releases their network
  # (CNI DEL) and volumes, and only then are they gone from the API.
  if [ -n "$(k8s_pid apiserver)" ] && [ -n "$(k8s_pid kubelet)" ]; then
    k8s_kubectl delete pods --all --all-namespaces --grace-period=3 --timeout=90s >/dev/null 2>&1 ||
      k8s_log "pods did not all go within 90s; removing them from the runtime"
  fi
  stop_daemon kubelet
  # What a dead kubelet could not tear down: the runtime's containers, killed and removed.
  if [ -n "$(k8s_pid containerd)" ]; then
    ctr_=(ctr -a "$SOCK" -n k8s.io)
    for t in $("${ctr_[@]}" tasks ls -q 2>/dev/null); do "${ctr_[@]}" tasks kill -s KILL "$t" >/dev/null 2>&1; done
    for t in $("${ctr_[@]}" tasks ls -q 2>/dev/null); do "${ctr_[@]}" tasks rm -f "$t" >/dev/null 2>&1; done
    for c in $("${ctr_[@]}" containers ls -q 2>/dev/null); do "${ctr_[@]}" containers rm "$c" >/dev/null 2>&1; done
  fi
  for d in containerd apiserver etcd; do stop_daemon "$d"; done
fi

# --- what a crashed kubelet or containerd left running -----------------------------------------------------------
# Pod processes: whatever is still in the pods' cgroup tree (only this cluster's pods are there).
cgroup_procs() { for d in $(k8s_cgroup_dirs); do [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} +; done 2>/dev/null | sort -u; }
for _ in $(seq 1 50); do
  procs=$(cgroup_procs)
  [ -n "$procs" ] || break
  # shellcheck disable=SC2086 # one pid a word
  kill -KILL $procs 2>/dev/null
  sleep 0.2
done
# Shims: they outlive containerd; ours serve this cluster's socket. Their sockets are in containerd's fixed
# /run/containerd/s, named sha256(<containerd socket>/<namespace>/<task id>); a killed shim leaves its socket.
for p in /proc/[0-9]*; do
  if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "containerd-shim-runc-v2 .*-address $SOCK "; then
    kill -KILL "${p#/proc/}" 2>/dev/null
  fi
done
for task in "$S"/containerd/state/io.containerd.runtime.v2.task/k8s.io/*; do
  [ -e "$task" ] || continue
  rm -f "/run/containerd/s/$(printf '%s' "$SOCK/k8s.io/${task##*/}" | sha256sum | cut -d' ' -f1)"
done

# --- the host: only what carries this cluster's paths, names or addresses ----------------------------------------
# Mounts under the state folder (volumes, secrets, overlay root filesystems), deepest first.
awk -v s="$S/" 'index($2, s) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
# Network namespaces of pods a crashed kubelet left: those holding an address of the pod range.
pod_prefix=${K8S_POD_CIDR%.*}.
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ { print $1 }'); do
  if ip -n "$ns" -4 -o addr show 2>/dev/null | grep -q " inet ${pod_prefix//./\\.}"; then ip netns delete "$ns"; fi
done
ip link delete "$K8S_BRIDGE" 2>/dev/null
# The CNI firewall plugin's rules for pods of our range; its chains too once nothing else uses them.
iptables -S CNI-FORWARD 2>/dev/null | grep -F -- " ${pod_prefix}" | sed 's/^-A /-D /' | while read -r rule; do eval "iptables $rule"; done
if [ "$(iptables -S CNI-FORWARD 2>/dev/null | grep -c '^-A')" -le 1 ] && ! iptables -S CNI-ADMIN 2>/dev/null | grep -q '^-A'; then
  while iptables -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null; do :; done
  iptables -F CNI-FORWARD 2>/dev/null && iptables -X CNI-FORWARD 2>/dev/null
  iptables -X CNI-ADMIN 2>/dev/null
fi
# The pods' cgroups (cgroup v1: one tree per hierarchy), innermost first.
for d in $(k8s_cgroup_dirs); do
  [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
done
# libcni's result cache (the kubelet's CNI DEL removes it; a crash does not): our network's entries by name, and
# the loopback entries of the same sandboxes.
for f in /var/lib/cni/results/ruriko-kube-*; do
  [ -e "$f" ] || continue
  id=${f#/var/lib/cni/results/ruriko-kube-}
  id=${id%-*}
  rm -f "$f" "/var/lib/cni/results/cni-loopback-$id-lo"
done
# The fixed paths the kubelet writes outside its root dir: its device-plugin socket, links to our pods' logs.
rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
find /var/log/containers -maxdepth 1 -type l -lname "$S/*" -delete 2>/dev/null
# Their folders, when nothing else is left in them.
for d in /var/lib/cni/results /var/lib/cni /var/lib/kubelet/device-plugins /var/lib/kubelet /var/log/containers; do rmdir "$d" 2>/dev/null; done

if [ -d "$S" ]; then
  if [ -d "$S/logs" ]; then
    rm -rf "$RURIKO_CACHE/kubernetes-last-logs"
    mv "$S/logs" "$RURIKO_CACHE/kubernetes-last-logs"
  fi
  rm -rf "$S" || k8s_log "could not remove $S completely"
  k8s_log "cluster stopped, host cleaned ($((SECONDS - began))s)"
fi
exit 0
