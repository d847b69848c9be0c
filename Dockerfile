# xmppd: build with `docker build -t xmppd .`, run with
#   docker run -p 5222:5222 -p 5223:5223 -v xmppd-data:/data -e XMPPD_DOMAINS=example.org xmppd
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary fits.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY modules ./modules
COPY bin ./bin
COPY bench ./bench
COPY test ./test
COPY config ./config
RUN npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production XMPPD_DATA_DIR=/data
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 5222 5223 5280 5443
ENTRYPOINT ["node", "dist/bin/xmppd.js"]
CMD ["start"]
