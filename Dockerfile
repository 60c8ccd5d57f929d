# The Keyflow processor image: compiled once, runs `keyflow start` as a non-root user.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
# The image has its own Node 24: drop the one the project brings for machines whose system Node is older.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev && rm -rf node_modules/node-linux-* node_modules/.bin/node

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY package.json ./
USER node
EXPOSE 8080
ENTRYPOINT ["node", "bin/keyflow.js"]
CMD ["start"]
