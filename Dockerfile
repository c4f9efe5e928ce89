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
# The agent's data volume mounts here; a fresh named volume takes this directory's owner.
RUN mkdir /data && chown 65532:65532 /data
VOLUME /data
USER 65532:65532
EXPOSE 8765
ENTRYPOINT ["node", "/app/dist/src/cli/gitai.js", "serve"]
