#!/usr/bin/env bash
# Local stand-ins for the two public images the Dockerfile and compose.yaml start from, for machines that reach
# no registry (this project's CI): built from what this host has installed, tagged with the public names, so the
# Dockerfile and compose.yaml are used unchanged.
#
#   node:24-bookworm-slim         Debian 12 from the host's own dpkg packages (no download), the running Node 24
#                                 and npm laid out as in the official image (/usr/local, docker-entrypoint.sh,
#                                 user node), the host's CA bundle (NODE_EXTRA_CA_CERTS: HTTPS may be intercepted)
#   matrixdotorg/synapse:vX.Y.Z   the same Debian base, the Synapse virtualenv's Python and site-packages, and a
#                                 /start.py with the official image's interface (generate | run, 991:991)
#
# Each image carries the digest of its inputs in the label ruriko.dev/base-inputs: an unchanged stand-in is reused.
# An image of that name without the label (the real one, pulled) is never replaced.
#
#   scripts/local-base-images.sh [--force]
# Environment: NODE_IMAGE, SYNAPSE_IMAGE (default: compose.yaml's), SYNAPSE_VENV (default ~/.cache/ruriko/synapse-venv).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LIB="$HERE/local-base-images"
ROOT=$(dirname "$HERE")
LABEL=ruriko.dev/base-inputs
FORCE=false
[ "${1:-}" = "--force" ] && FORCE=true

NODE_IMAGE=${NODE_IMAGE:-node:24-bookworm-slim}
SYNAPSE_IMAGE=${SYNAPSE_IMAGE:-$(sed -n 's/.*\${SYNAPSE_IMAGE:-\(matrixdotorg\/synapse:[^}]*\)}.*/\1/p' "$ROOT/compose.yaml" | head -1)}
SYNAPSE_VENV=${SYNAPSE_VENV:-$HOME/.cache/ruriko/synapse-venv}
[ -n "$SYNAPSE_IMAGE" ] || { echo "local-base-images: no SYNAPSE_IMAGE default found in compose.yaml" >&2; exit 1; }

NODE_BIN=$(readlink -f "$(command -v node)")
NODE_VERSION=$(node -p 'process.version.slice(1)')
[ "${NODE_VERSION%%.*}" = 24 ] || { echo "local-base-images: node $NODE_VERSION on PATH; Node 24 is needed" >&2; exit 1; }
NODE_HEADERS=$(dirname "$(dirname "$NODE_BIN")")/include/node
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
HOST_CA=/etc/ssl/certs/ca-certificates.crt

STAGES=()
trap 'rm -rf "${STAGES[@]}"' EXIT
stage_dir() { S=$(mktemp -d "/tmp/ruriko-$1-rootfs.XXXXXX"); STAGES+=("$S"); }

sha() { sha256sum | cut -c1-64; }
dpkg_set() { dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n'; }

# Decides whether IMAGE must be built for inputs digest HASH; says why not when it need not.
needs_build() {
  local image=$1 hash=$2 label
  if ! docker image inspect "$image" >/dev/null 2>&1; then return 0; fi
  label=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$image" 2>/dev/null || true)
  if [ -z "$label" ] || [ "$label" = "<no value>" ]; then
    echo "$image: present and not a local stand-in (no $LABEL label): left alone"
    return 1
  fi
  if [ "$label" = "$hash" ] && [ "$FORCE" = false ]; then
    echo "$image: local stand-in up to date"
    return 1
  fi
  return 0
}

stage_debian() { # STAGE [extra-package ...]
  python3 "$LIB/make-base-rootfs.py" "$@" >/dev/null
  mkdir -p "$1/etc/ssl/certs" "$1/usr/local/share/ruriko-base"
  cp "$HOST_CA" "$1/etc/ssl/certs/ca-certificates.crt"
  # Kept apart too: installing ca-certificates in an image rewrites the bundle above from Debian's list.
  cp "$HOST_CA" "$1/usr/local/share/ruriko-base/host-ca.crt"
}

build_node() {
  local hash started
  hash=$( { cat "$0" "$LIB/make-base-rootfs.py"; dpkg_set; sha <"$NODE_BIN"; echo "$NODE_VERSION"; cat "$NPM_DIR/package.json"; sha <"$HOST_CA"; } | sha)
  needs_build "$NODE_IMAGE" "$hash" || return 0
  started=$(date +%s)
  stage_dir node
  stage_debian "$S"
  mkdir -p "$S/usr/local/bin" "$S/usr/local/lib/node_modules" "$S/usr/local/include"
  cp -a "$NODE_BIN" "$S/usr/local/bin/node"
  cp -a "$NODE_HEADERS" "$S/usr/local/include/"
  cp -a "$NPM_DIR" "$S/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$S/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$S/usr/local/bin/npx"
  cat >"$S/usr/local/bin/docker-entrypoint.sh" <<'EOS'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOS
  chmod 755 "$S/usr/local/bin/docker-entrypoint.sh"
  tar -C "$S" --numeric-owner -cf - . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c "ENV NODE_VERSION=$NODE_VERSION" \
    -c 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ruriko-base/host-ca.crt' \
    -c 'ENTRYPOINT ["docker-entrypoint.sh"]' -c 'CMD ["node"]' -c "LABEL $LABEL=$hash" \
    -c 'LABEL org.opencontainers.image.description="local stand-in (scripts/local-base-images.sh)"' - "$NODE_IMAGE" >/dev/null
  echo "$NODE_IMAGE: built (node $NODE_VERSION, npm $(node -p "require('$NPM_DIR/package.json').version")) in $(($(date +%s) - started))s"
}

build_synapse() {
  local py base pyv synv hash started f
  py="$SYNAPSE_VENV/bin/python"
  [ -x "$py" ] || { echo "local-base-images: no Synapse virtualenv at $SYNAPSE_VENV (.ci/run makes it)" >&2; exit 1; }
  base=$("$py" -c 'import sys; print(sys.base_prefix)')
  pyv=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  synv=$("$py" -c 'import synapse; print(synapse.__version__)')
  [ "v$synv" = "${SYNAPSE_IMAGE##*:}" ] || echo "$SYNAPSE_IMAGE: note: the virtualenv has Synapse $synv"
  hash=$( { cat "$0" "$LIB/make-base-rootfs.py" "$LIB/synapse-start.py"; dpkg_set; echo "$base $pyv $synv"; sha <"$(readlink -f "$base/bin/python$pyv")"; ls "$SYNAPSE_VENV/lib/python$pyv/site-packages" | sort; sha <"$HOST_CA"; } | sha)
  needs_build "$SYNAPSE_IMAGE" "$hash" || return 0
  started=$(date +%s)
  stage_dir synapse
  stage_debian "$S" libffi8 libgssapi-krb5-2 libncursesw6 libnsl2 libsqlite3-0 libssl3 libuuid1 libexpat1 libreadline8 libtirpc3 zlib1g libbz2-1.0 liblzma5
  mkdir -p "$S/usr/local/bin" "$S/usr/local/lib" "$S/data"
  cp -a "$(readlink -f "$base/bin/python$pyv")" "$S/usr/local/bin/python$pyv"
  ln -s "python$pyv" "$S/usr/local/bin/python3"
  ln -s python3 "$S/usr/local/bin/python"
  cp -a "$base/lib/libpython$pyv".so* "$S/usr/local/lib/" 2>/dev/null || true
  tar -C "$base/lib" -cf - --exclude="python$pyv/test" --exclude="python$pyv/site-packages" --exclude="python$pyv/config-*" \
    --exclude="python$pyv/idlelib" --exclude="python$pyv/tkinter" --exclude="python$pyv/turtledemo" --exclude='_tkinter*' "python$pyv" | tar -C "$S/usr/local/lib" -xf -
  mkdir -p "$S/usr/local/lib/python$pyv/site-packages"
  cp -a "$SYNAPSE_VENV/lib/python$pyv/site-packages/." "$S/usr/local/lib/python$pyv/site-packages/"
  for f in "$SYNAPSE_VENV"/bin/*; do # console scripts (register_new_matrix_user, …) on the image's python
    if [ -f "$f" ] && head -1 "$f" | grep -q "^#!.*$SYNAPSE_VENV"; then
      sed "1s|.*|#!/usr/local/bin/python$pyv|" "$f" >"$S/usr/local/bin/$(basename "$f")"
      chmod 755 "$S/usr/local/bin/$(basename "$f")"
    fi
  done
  install -m 755 "$LIB/synapse-start.py" "$S/start.py"
  ldconfig -r "$S"
  tar -C "$S" --numeric-owner -cf - . | docker import -c 'ENTRYPOINT ["/start.py"]' -c 'VOLUME ["/data"]' \
    -c 'EXPOSE 8008/tcp 8009/tcp 8448/tcp' -c 'ENV LANG=C.UTF-8' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c "LABEL org.opencontainers.image.version=$synv" -c "LABEL $LABEL=$hash" \
    -c 'LABEL org.opencontainers.image.description="local stand-in (scripts/local-base-images.sh)"' - "$SYNAPSE_IMAGE" >/dev/null
  echo "$SYNAPSE_IMAGE: built (Synapse $synv, Python $pyv) in $(($(date +%s) - started))s"
}

build_node
build_synapse
