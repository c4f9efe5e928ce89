# Production image of Ruriko and of the Gitai agent runtime (one image, two entry points).
# Where no registry is reachable, `node scripts/build-agent-image.ts` assembles the same layout
# for the agent from the local Node 24 instead.
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
USER 65532:65532
EXPOSE 8765
ENTRYPOINT ["node", "/app/dist/src/cli/gitai.js", "serve"]
