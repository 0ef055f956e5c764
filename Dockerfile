# pyrodist: the operator and the distributor in one image.
# For users with Docker; `make image` builds the same image without Docker
# (hack/image). Build: docker build -t ghcr.io/pyrodist/pyrodist:<version> .
FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits reuse the module download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/operator ./cmd/distributor

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="pyrodist" \
      org.opencontainers.image.description="pyrodist operator and zone-aware Pyroscope v2 distributor" \
      org.opencontainers.image.source="https://github.com/pyrodist/pyrodist" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/operator /out/distributor /
USER 65532:65532
EXPOSE 4040 7946
# The operator's Deployment runs /operator; distributor pods use this entrypoint.
ENTRYPOINT ["/distributor"]
