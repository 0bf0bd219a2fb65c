# syntax=docker/dockerfile:1
# The two runtime images, built with docker, podman or buildah:
#   docker build --target operator -t ghcr.io/licenseware/licenseware-operator:0.1.0 .
#   docker build --target worker   -t ghcr.io/licenseware/licenseware-worker:0.1.0 .
#   (podman build / buildah bud take the same arguments)
# One build stage compiles both binaries (the worker profile-guided, worker/pgo/README.md);
# each runtime stage is FROM scratch with
# one binary, the shared libraries it loads, CA certificates and the non-root
# user 65532 (e2e/images/rootfs): no shell, no package manager. `make images`
# makes the same images without a container engine (e2e/images/build).
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config zlib1g-dev libssl-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p licenseware-operator --bin licenseware-operator \
 && host=$(rustc -vV | sed -n 's/^host: //p') \
 && RUSTFLAGS="$(worker/pgo/rustflags)" cargo build --release --locked --target "$host" \
      -p licenseware-worker --bin licenseware-worker \
 && worker/pgo/check "target/$host/release/licenseware-worker" \
 && e2e/images/rootfs /rootfs/operator target/release/licenseware-operator \
 && e2e/images/rootfs /rootfs/worker "target/$host/release/licenseware-worker"

FROM scratch AS operator
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="licenseware-operator" \
      org.opencontainers.image.description="The Licenseware operator: Topics, Uploaders and the registry" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/licenseware/licenseware-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Licenseware"
COPY --from=build /rootfs/operator/ /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/licenseware-operator"]
CMD ["run"]

FROM scratch AS worker
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="licenseware-worker" \
      org.opencontainers.image.description="licenseware-worker: consume, serve (the API) and the local tools" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/licenseware/licenseware-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Licenseware"
COPY --from=build /rootfs/worker/ /
# mimalloc gives freed pages back at once and commits arenas as used, not ahead
# (the API's RSS under load a quarter lower; e2e/images/build sets the same).
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    MIMALLOC_PURGE_DELAY=0 MIMALLOC_ARENA_EAGER_COMMIT=0
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/licenseware-worker"]
CMD ["--help"]
