# Production image of Ruriko and of the Gitai agent runtime (one image, two entry points).
# Where no registry is reachable, `npm run agent-image` assembles the same layout for the agent
# from the local Node 24 instead (see docs/acp.md).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --allow-scripts=better-sqlite3,protobufjs
COPY tsconfig.json tsconfig.build.json ./
COPY schemas ./schemas
COPY src ./src
RUN npm run build && npm prune --omit=dev --allow-scripts=better-sqlite3,protobufjs

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./
# The MCP servers the templates name are commands on PATH (their npm bins), installed here, never at run
# time; Gitai's own tool server too.
RUN ln -s /app/dist/src/gitai/tools/http-tool.js /usr/local/bin/gitai-http-tool && chmod 755 /app/dist/src/gitai/tools/http-tool.js
ENV PATH=/app/node_modules/.bin:$PATH
# The agent's data volume mounts here; a fresh named volume takes this directory's owner.
RUN mkdir /data && chown 65532:65532 /data
VOLUME /data
USER 65532:65532
EXPOSE 8765
# A small young generation keeps each idle agent small (docs/performance.md); not --lite-mode: fetch needs WebAssembly.
ENTRYPOINT ["node", "--max-semi-space-size=1", "/app/dist/src/cli/gitai.js", "serve"]
