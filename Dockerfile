# One Parley instance: what `npm start` runs, without the dev dependencies, on Node 24, the current LTS
# (`--build-arg NODE_VERSION=20` for the Node 20 the development machines run; the suite passes on both).
# tsx (which runs the TypeScript sources) is a regular dependency, so a production install has it.
ARG NODE_VERSION=24
FROM node:${NODE_VERSION}-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lockfile (or the SDK workspace it links) changes.
COPY package.json package-lock.json ./
COPY client ./client
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY db ./db
COPY triggers ./triggers
COPY web ./web

# Files live in PostgreSQL (or S3: FILE_STORAGE), so an instance writes nothing to its own disk.
USER node

ENV HOST=0.0.0.0 PORT=3000
EXPOSE 3000
# Node is PID 1 and handles SIGTERM itself (close-with-grace): sockets get 1001, presence is cleared.
CMD ["node", "--import", "tsx", "src/server.ts"]
