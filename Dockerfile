# Verdict daemon image. NOTE: this file is shipped for users but is not built or tested in this project's CI
# (the development machines have no Docker engine). The test suite covers the same commands it runs.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# onnxruntime-node's install script would download CUDA provider libraries (unused: the CPU binaries ship in
# the package); it reads this variable itself, so the build needs no network beyond the npm registry.
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
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
