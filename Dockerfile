# The StreamFunction's image (template.yaml: PackageType Image, arm64): the
# Go bootstrap and the pinned Claude Code CLI on Lambda's provided.al2023
# base. `sam build` builds it; the function runs as an unprivileged user.

# The Go release of every build: the Makefile's GOTOOLCHAIN (a test keeps
# the two equal), so the image's bootstrap is built as `make build`'s is.
ARG GO_VERSION=1.26.10

# The bootstrap, cross-compiled for arm64 by a stage that runs as the build
# machine's own platform: native, never emulated. No BuildKit-only syntax,
# as `sam build` may use the classic builder, which sets no BUILDPLATFORM;
# there the stage runs as linux/arm64, the image's own platform, which a
# machine building this image runs anyway for the CLI stage below. (A
# default set with `ARG BUILDPLATFORM=` would instead replace the value
# BuildKit sets.)
FROM --platform=${BUILDPLATFORM:-linux/arm64} golang:${GO_VERSION}-bookworm AS bootstrap
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY functions/ functions/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=linux GOARCH=arm64 \
    go build -trimpath -tags lambda.norpc -ldflags "-s -w" -o /out/bootstrap ./functions/stream

# The CLI at exactly the version package-lock.json pins (npm ci verifies its
# integrity), with a Node.js LTS release. npm installs the platform package
# of the platform it runs on, so this stage runs as linux/arm64: native on
# an arm64 machine (deploy.yml's runner), emulated elsewhere. No install
# scripts run: the native binary is taken from the platform package.
FROM --platform=linux/arm64 node:24-bookworm-slim AS cli
WORKDIR /cli
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
    && install -D -m 0711 node_modules/@anthropic-ai/claude-code-linux-arm64/claude /out/claude \
    && /out/claude --version

FROM --platform=linux/arm64 public.ecr.aws/lambda/provided:al2023
# Execute-only (0711, kept by COPY): a CLI its user cannot read is not
# dumpable, so the tools it runs cannot open its memory, environment or
# stdout.
COPY --from=cli /out/claude /opt/claude/bin/claude
COPY --from=bootstrap /out/bootstrap /var/task/bootstrap
# Lambda's only writable folder is /tmp: the CLI's home, its sessions and
# the conversations' workspaces live there.
ENV CLAUDE_PATH=/opt/claude/bin/claude \
    CLAUDE_WORK_ROOT=/tmp/ovrlrd/work \
    CLAUDE_CONFIG_ROOT=/tmp/ovrlrd/claude \
    HOME=/tmp
USER 10001:10001
ENTRYPOINT ["/var/task/bootstrap"]
