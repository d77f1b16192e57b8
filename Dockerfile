# One Parley instance: what `npm start` runs, on Node 20, without the dev dependencies.
# tsx (which runs the TypeScript sources) is a regular dependency, so a production install has it.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lockfile changes.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY db ./db
COPY triggers ./triggers
COPY web ./web

# Uploaded files: a volume shared by every instance is mounted here (docker-compose.yml). Created and
# owned by `node` in the image so that a fresh named volume starts with that owner.
RUN mkdir -p /data/uploads && chown node:node /data/uploads
USER node

ENV HOST=0.0.0.0 PORT=3000 UPLOAD_DIR=/data/uploads
EXPOSE 3000
# Node is PID 1 and handles SIGTERM itself (close-with-grace): sockets get 1001, presence is cleared.
CMD ["node", "--import", "tsx", "src/server.ts"]
