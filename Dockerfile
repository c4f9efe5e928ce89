# Ruriko (the default target: the last stage) and the Gitai agent runtime (target `gitai`), from one build:
#   docker build -t ruriko:dev .
#   docker build --target gitai -t ruriko/gitai:dev .
# or both with `docker compose build` (compose.yaml). NODE_IMAGE is the official node:24-bookworm-slim; where no
# registry is reachable, scripts/local-base-images.sh builds a stand-in under that name from the host (this
# project's CI does). Nothing else is pulled: every dependency comes from package-lock.json and Debian's archive.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3's install runs node-gyp (python3, make) against the image's own Node headers, never a download.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY schemas ./schemas
COPY src ./src
COPY scripts/bundle-gitai.ts scripts/healthcheck.mjs ./scripts/
# Gitai: bundled as `npm run agent-image` bundles it (src/runtime/agent-image.ts), laid out under /gitai as in the image.
RUN node scripts/bundle-gitai.ts --out /gitai
# Ruriko: compiled, with its production dependencies only.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# The agent runtime. Ruriko creates its containers (read-only root, /data a named volume, hardened) and passes
# `--host`/`--port` itself in host network mode; the entry point's flags keep each idle agent small
# (docs/performance.md) and are the ones `npm run agent-image` uses (GITAI_ENTRYPOINT; the compose test checks).
FROM ${NODE_IMAGE} AS gitai
COPY --from=build /gitai/ /
COPY --from=build /src/scripts/healthcheck.mjs /usr/local/lib/ruriko/healthcheck.mjs
# User 65532 by name too (as in `npm run agent-image`'s image): Node's os.userInfo() needs a passwd entry.
RUN groupadd -g 65532 ruriko && useradd -u 65532 -g 65532 -d /data -M -s /usr/sbin/nologin ruriko \
 && mkdir /data && chown 65532:65532 /data
LABEL org.opencontainers.image.title="gitai" ruriko.dev/component="gitai"
ENV NODE_ENV=production GITAI_ACP_PORT=8765
WORKDIR /app
USER 65532:65532
EXPOSE 8765
# ACP's /health needs no token. The probe (~10 MB beside the agent, inside its memory limit) runs once a minute.
HEALTHCHECK --interval=60s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/node", "/usr/local/lib/ruriko/healthcheck.mjs", "gitai"]
ENTRYPOINT ["/usr/local/bin/node", "--max-semi-space-size=1", "--single-threaded", "--optimize-for-size", "--no-opt", "--no-maglev", "--no-sparkplug", "/app/gitai.mjs", "serve"]

# Ruriko: the controller, with git for git sources (simple-git runs the binary; ssh for ssh:// remotes).
FROM ${NODE_IMAGE} AS ruriko
RUN apt-get update && apt-get install -y --no-install-recommends git openssh-client ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/scripts/healthcheck.mjs /usr/local/lib/ruriko/healthcheck.mjs
# `ruriko …` on PATH for `docker compose exec ruriko ruriko status`; /data is the state directory (a volume);
# user 65532 has a name (the audit log records who ran `ruriko secret set`).
RUN ln -s /app/dist/src/cli/ruriko.js /usr/local/bin/ruriko && chmod 755 /app/dist/src/cli/ruriko.js \
 && groupadd -g 65532 ruriko && useradd -u 65532 -g 65532 -d /data -M -s /usr/sbin/nologin ruriko \
 && mkdir /data && chown 65532:65532 /data
LABEL org.opencontainers.image.title="ruriko" ruriko.dev/component="ruriko"
# Configured by RURIKO_… variables (docs/configuration.md): the manifests (RURIKO_MANIFESTS or RURIKO_GIT) and Matrix
# come from the compose file or `docker run -e`; a command-line flag would win over them.
ENV NODE_ENV=production RURIKO_STATE_DIR=/data RURIKO_HTTP=0.0.0.0:8484
VOLUME /data
USER 65532:65532
EXPOSE 8484
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/node", "/usr/local/lib/ruriko/healthcheck.mjs", "ruriko"]
# A young generation of at most 4 MB: planning 10,000 agents peaks at ~145 MB instead of ~195 MB, in the same time
# (docs/performance.md, "Plan at scale").
ENTRYPOINT ["/usr/local/bin/node", "--max-semi-space-size=4", "/app/dist/src/cli/ruriko.js"]
CMD ["serve"]
