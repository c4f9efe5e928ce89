#!/usr/bin/env bash
# Copies images from Docker into the running cluster's containerd, where pods find them without a registry
# (docker save | ctr import). An image already there with the same id is skipped. Pods must not try to pull it:
# imagePullPolicy IfNotPresent (the default for a tag other than :latest) or Never.
#   bash scripts/kubernetes/load-image.sh ruriko/gitai:dev [more images…]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ $# -gt 0 ] || k8s_die "usage: load-image.sh IMAGE..."
[ -n "$(k8s_pid containerd)" ] || k8s_die "the cluster is not running (start.sh)"
ctr_=(ctr -a "$K8S_CONTAINERD_SOCK" -n k8s.io)

# The name containerd (and the kubelet) give a Docker reference: docker.io/library/x:latest for x.
normalized() {
  local ref=$1 first=${1%%/*}
  [[ "${ref##*/}" == *:* || "$ref" == *@* ]] || ref="$ref:latest"
  if [[ "$ref" != */* ]]; then echo "docker.io/library/$ref"
  elif [[ "$first" == *.* || "$first" == *:* || "$first" == localhost ]]; then echo "$ref"
  else echo "docker.io/$ref"; fi
}

# The image id (its config's digest) containerd holds under NAME, if any.
loaded_id() {
  local manifest
  manifest=$("${ctr_[@]}" images ls "name==$1" 2>/dev/null | awk 'NR == 2 { print $3 }')
  [ -n "$manifest" ] || return 0
  "${ctr_[@]}" content get "$manifest" 2>/dev/null | tr -d ' \n' | grep -o '"config":{[^}]*}' | grep -o 'sha256:[0-9a-f]*' | head -1
}

for image in "$@"; do
  id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null) || k8s_die "no Docker image $image"
  name=$(normalized "$image")
  if [ "$(loaded_id "$name")" = "$id" ]; then
    k8s_log "$image: in the cluster already"
    continue
  fi
  began=$SECONDS
  docker save "$image" | "${ctr_[@]}" images import - >/dev/null
  [ "$(loaded_id "$name")" = "$id" ] || k8s_die "$image: imported, yet containerd has no $name with id $id"
  k8s_log "$image: loaded as $name ($((SECONDS - began))s)"
done
