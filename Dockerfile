# Verdict daemon image. NOTE: this file is shipped for users but is not built or tested in this project's CI
# (the development machines have no Docker engine). The test suite covers the same commands it runs.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# The librdkafka producer (@confluentinc/kafka-javascript, an optional dependency: README "Choosing the
# producer") builds at `npm ci` against Debian's OpenSSL and zlib, with these packages and CKJS_LINKING=dynamic;
# without that variable its install script would download and build zlib, OpenSSL, zstd and curl itself.
RUN apt-get update \
  && apt-get install -y --no-install-recommends libssl-dev zlib1g-dev python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
# onnxruntime-node's install script would download CUDA provider libraries (unused: the CPU binaries ship in
# the package); it reads this variable itself, so the build needs no network beyond the npm registry.
ENV ONNXRUNTIME_NODE_INSTALL=skip CKJS_LINKING=dynamic
RUN npm ci
COPY . .
# The producer's build leaves librdkafka's sources, objects and static archives (about 290 MB); the script
# keeps the addon and its two shared libraries (about 20 MB) and fails the build if the package did not build
# or no longer loads.
RUN npm run build && npm prune --omit=dev && bash scripts/prune-native-producer.sh node_modules

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# What the librdkafka producer links at run time: libssl3 (not in bookworm-slim since bookworm's apt stopped
# depending on it; nodejs/docker-node#1919) and zlib1g; ca-certificates for `kafka.ssl: true`, whose system
# CAs librdkafka reads from /etc/ssl/certs (kafkajs uses Node's own bundle).
RUN apt-get update \
  && apt-get install -y --no-install-recommends libssl3 zlib1g ca-certificates \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./
COPY --from=build /app/config ./config
COPY --from=build /app/models/registry ./models/registry
# The crash journal's default directory (README "When the process itself crashes"), writable by the daemon's
# user; on Kubernetes mount an emptyDir here so it survives container restarts.
RUN mkdir -p /app/.verdict/crash-journal && chown -R node:node /app/.verdict
USER node
EXPOSE 9464
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["run", "--config", "config/verdict.example.yaml"]
