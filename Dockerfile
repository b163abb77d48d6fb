# syntax=docker/dockerfile:1

FROM golang:1.26-bookworm AS build
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
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chat /usr/local/bin/chat
# The host key lives on a volume so clients keep recognising the server
# across restarts and upgrades.
COPY --from=build --chown=nonroot:nonroot /out/data /data
WORKDIR /data
VOLUME /data
ENV CHAT_LISTEN=:2222 \
    CHAT_HOST_KEY=/data/.ssh/id_ed25519
EXPOSE 2222
ENTRYPOINT ["/usr/local/bin/chat"]
