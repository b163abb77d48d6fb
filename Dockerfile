# syntax=docker/dockerfile:1

# Base images are pinned by digest, so a rebuild of this commit starts from
# the same bytes whatever a tag points at today. Each digest is a
# multi-platform index (any architecture resolves); the tag beside it is the
# one it was taken from. To update one, look up the tag's current index
# digest (`docker buildx imagetools inspect TAG`, or `crane digest TAG`) and
# replace both.
#
# golang:1.26.8-bookworm, the index published in docker-library/repo-info
# (built 2026-09-19). A point-release tag because the newest digest on
# record for golang:1.26-bookworm was older (Go 1.26.5); it matches go.mod's
# `go 1.26.8` line.
FROM golang:1.26.8-bookworm@sha256:f4191582e1522dfc5980a6bdc0309a756f9697f3e7d0f199c7e26fc82ab324fd AS build
# The image pins its own Go (GOTOOLCHAIN=local); auto honours go.mod's
# toolchain line, so the binary never has an older standard library.
ENV GOTOOLCHAIN=auto
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/chat . \
 && mkdir -p /out/data/.ssh && chmod 700 /out/data/.ssh

# Static binary, no shell, no package manager, not root.
# gcr.io/distroless/static-debian12:nonroot as of 2026-08-26.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/chat /usr/local/bin/chat
# The host key lives on a volume so clients keep recognising the server
# across restarts and upgrades.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
VOLUME /data
# distroless's nonroot, by number: Kubernetes can only prove runAsNonRoot
# for a numeric user.
USER 65532:65532
# CHAT_HTTP_LISTEN: the operations listener (health, readiness, metrics),
# never the SSH port; the HEALTHCHECK below needs it.
ENV CHAT_LISTEN=:2222 \
    CHAT_HTTP_LISTEN=:9090 \
    CHAT_HOST_KEY=/data/.ssh/id_ed25519
EXPOSE 2222 9090
# No shell here to run curl with: the binary asks its own /healthz, on the
# address CHAT_HTTP_LISTEN names, and exits 0 or 1.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/chat", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/chat"]
