#!/usr/bin/env bash
# Proves the running test cluster does what Ruriko's Kubernetes tests need, with the Gitai agent image:
#   1. a Docker image runs in a pod (load-image.sh), hardened as agents are;
#   2. a PersistentVolumeClaim is provisioned; a file a pod wrote is read back by a new pod after the first is gone;
#   3. Gitai answers on its ACP port: /health through the API server's port-forward, and /status with the token
#      it took from its data volume;
#   4. pod-to-pod traffic passes Docker's FORWARD policy;
#   5. a host-network pod reaches the API server on 127.0.0.1 with its service-account token;
#   6. deleting the claim deletes its volume and its directory.
# Cleans up after itself (its namespace). Needs node on PATH (for HTTP from the host and in pods).
#   bash scripts/kubernetes/check.sh [IMAGE]     (default ruriko/gitai:dev)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IMAGE=${1:-ruriko/gitai:dev}
NS=ruriko-cluster-check
[ -f "$K8S_KUBECONFIG" ] || k8s_die "the cluster is not running (start.sh)"
kc() { k8s_kubectl -n "$NS" "$@"; }
say() { printf '%s\n' "$*" >&2; }
fail() { k8s_log "CHECK FAILED: $*"; kc get pods,pvc -o wide >&2 || true; kc get events --sort-by=.lastTimestamp 2>/dev/null | tail -15 >&2 || true; exit 1; }
began=$SECONDS
t() { echo "$((SECONDS - began))s"; }

pf_pid=""
cleanup() {
  [ -z "$pf_pid" ] || kill "$pf_pid" 2>/dev/null || true
  k8s_kubectl delete namespace "$NS" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
}
trap cleanup EXIT

k8s_kubectl delete namespace "$NS" --ignore-not-found --wait=true --timeout=120s >/dev/null
k8s_kubectl create namespace "$NS" >/dev/null
k8s_wait 60 "default service account of $NS" kc get serviceaccount default
bash "$K8S_SCRIPTS/load-image.sh" "$IMAGE"

proof=$(openssl rand -hex 16)
token=$(openssl rand -hex 32)
# The agents' hardening (src/runtime/docker-runtime.ts) as a pod securityContext; fsGroup makes the volume theirs.
pod() { # NAME EXTRA-SPEC-YAML CONTAINER-EXTRA-YAML
  cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {app: $1}}
spec:
  restartPolicy: $([ "$1" = agent ] && echo Always || echo Never)
  automountServiceAccountToken: $([ "$1" = api-client ] && echo true || echo false)
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: {type: RuntimeDefault}}
${2:-}
  containers:
  - name: main
    image: $IMAGE
    imagePullPolicy: Never
    securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
${3:-}
EOF
}
node_cmd() { printf '    command: ["/usr/local/bin/node", "-e", %s]\n' "$(printf '%s' "$1" | node -e 'process.stdout.write(JSON.stringify(require("fs").readFileSync(0, "utf8")))')"; }
data_volume='  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}, {name: tmp, emptyDir: {medium: Memory, sizeLimit: 64Mi}}]'
data_mounts='    volumeMounts: [{name: data, mountPath: /data}, {name: tmp, mountPath: /tmp}]'

# --- 2. storage: write, delete the pod, read back in a new pod ---------------------------------------------------
kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}
EOF
{
  pod writer "$data_volume" "$data_mounts"
  node_cmd "const fs = require('fs'); fs.writeFileSync('/data/proof.txt', process.env.PROOF); fs.writeFileSync('/data/acp-token', process.env.TOKEN, {mode: 0o600}); console.log('wrote', fs.statSync('/data').mode.toString(8))"
  printf '    env: [{name: PROOF, value: "%s"}, {name: TOKEN, value: "%s"}]\n' "$proof" "$token"
} | kc apply -f - >/dev/null
kc wait --for=jsonpath='{.status.phase}'=Succeeded pod/writer --timeout=180s >/dev/null || fail "the writer pod did not succeed"
volume=$(kc get pvc data -o jsonpath='{.spec.volumeName}')
say "ok  PVC data bound to $volume ($(k8s_kubectl get pv "$volume" -o jsonpath='{.spec.local.path}')); writer pod: $(kc logs writer) [$(t)]"
kc delete pod writer --wait=true >/dev/null

# --- 1 and 3. Gitai in a new pod with the same claim -------------------------------------------------------------
{
  pod agent "$data_volume" "$data_mounts"
  cat <<EOF
    env: [{name: RURIKO_AGENT, value: check}]
    ports: [{containerPort: 8765}]
    readinessProbe: {httpGet: {path: /health, port: 8765}, periodSeconds: 1}
EOF
} | kc apply -f - >/dev/null
agent_began=$SECONDS
kc wait --for=condition=Ready pod/agent --timeout=180s >/dev/null || fail "the agent pod did not become Ready"
say "ok  Gitai pod Ready $((SECONDS - agent_began))s after creation (readiness probe GET /health) [$(t)]"
read_back=$(kc exec agent -- /usr/local/bin/node -e 'const fs = require("fs"); process.stdout.write(fs.readFileSync("/data/proof.txt", "utf8") + " token-file-left=" + fs.existsSync("/data/acp-token"))')
[ "$read_back" = "$proof token-file-left=false" ] || fail "read back '$read_back', wrote '$proof'"
say "ok  new pod read the file back through kubectl exec: $read_back (Gitai took and deleted the token file) [$(t)]"

kc port-forward pod/agent 0:8765 >"$K8S_STATE/check-port-forward.out" 2>&1 &
pf_pid=$!
k8s_wait 60 "port-forward" grep -q 'Forwarding from 127.0.0.1:' "$K8S_STATE/check-port-forward.out" || fail "port-forward did not start"
port=$(grep -o 'Forwarding from 127.0.0.1:[0-9]*' "$K8S_STATE/check-port-forward.out" | head -1 | cut -d: -f2)
# shellcheck disable=SC2016 # JavaScript, not shell
acp=$(PORT=$port TOKEN=$token node -e '
  const get = (path, auth) => fetch(`http://127.0.0.1:${process.env.PORT}${path}`, { headers: auth ? { authorization: `Bearer ${process.env.TOKEN}` } : {} })
    .then(async (r) => `${path} ${r.status} ${await r.text()}`);
  (async () => { console.log(await get("/health")); const s = await get("/status", true); console.log(s.slice(0, 120)); })();')
if ! grep -q '^/health 200 {"status":"ok"}' <<<"$acp" || ! grep -q '^/status 200 {"agent":"check"' <<<"$acp"; then fail "ACP through port-forward: $acp"; fi
say "ok  ACP through the API server's port-forward: $(tr '\n' ' ' <<<"$acp")… [$(t)]"
kill "$pf_pid" 2>/dev/null || true
pf_pid=""

# --- 4. pod to pod -----------------------------------------------------------------------------------------------
agent_ip=$(kc get pod agent -o jsonpath='{.status.podIP}')
{
  pod client ""
  node_cmd "fetch('http://' + process.env.AGENT + ':8765/health').then(async (r) => console.log(r.status, await r.text()), (e) => { console.log(String(e.cause ?? e)); process.exit(1); })"
  printf '    env: [{name: AGENT, value: "%s"}]\n' "$agent_ip"
} | kc apply -f - >/dev/null
kc wait --for=jsonpath='{.status.phase}'=Succeeded pod/client --timeout=120s >/dev/null || fail "pod to pod: $(kc logs client 2>&1)"
say "ok  pod to pod: client pod -> $agent_ip:8765/health: $(kc logs client) [$(t)]"

# --- 5. a host-network pod and the API server ------------------------------------------------------------------------
kc create role pod-reader --verb=list --resource=pods >/dev/null
kc create rolebinding pod-reader --role=pod-reader --serviceaccount="$NS:default" >/dev/null
{
  pod api-client "  hostNetwork: true"
  node_cmd "const fs = require('fs'), https = require('https'); const dir = '/var/run/secrets/kubernetes.io/serviceaccount/';
const req = https.get({ host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT, path: '/api/v1/namespaces/' + fs.readFileSync(dir + 'namespace', 'utf8') + '/pods',
  ca: fs.readFileSync(dir + 'ca.crt'), headers: { authorization: 'Bearer ' + fs.readFileSync(dir + 'token', 'utf8') } }, (res) => {
  let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => { console.log(res.statusCode, JSON.parse(body).items?.length, 'pods'); process.exit(res.statusCode === 200 ? 0 : 1); }); });
req.on('error', (e) => { console.log(String(e)); process.exit(1); });"
  printf '    env: [{name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}, {name: KUBERNETES_SERVICE_PORT, value: "%s"}]\n' "$K8S_API_PORT"
} | kc apply -f - >/dev/null
kc wait --for=jsonpath='{.status.phase}'=Succeeded pod/api-client --timeout=120s >/dev/null || fail "host-network pod to the API server: $(kc logs api-client 2>&1)"
say "ok  host-network pod -> https://127.0.0.1:$K8S_API_PORT with its service-account token and the cluster CA: $(kc logs api-client) [$(t)]"

# --- 6. the claim's deletion reclaims its volume ---------------------------------------------------------------------
kc delete pod --all --wait=true >/dev/null
kc delete pvc data --wait=true >/dev/null
k8s_wait 60 "volume $volume deleted" bash -c "! '$K8S_BIN/kubectl' --kubeconfig '$K8S_KUBECONFIG' get pv '$volume' >/dev/null 2>&1" || fail "volume $volume not deleted"
[ ! -e "$K8S_STATE/volumes/$volume" ] || fail "directory of $volume left behind"
say "ok  claim deleted: volume $volume and its directory gone [$(t)]"
say "all checks passed in $(t)"
