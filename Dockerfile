# syntax=docker/dockerfile:1
# Baraza: multi-stage build. The builder compiles the release binary; the
# runtime image holds it and the CA certificates, runs as an unprivileged
# user, and has no shell tools beyond Debian's base.
#   docker build -t baraza .
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target-docker \
    CARGO_TARGET_DIR=/src/target-docker cargo build --release --locked -p baraza \
 && install -m 0755 /src/target-docker/release/baraza /usr/local/bin/baraza

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 baraza \
 && useradd --system --uid 10001 --gid baraza --home-dir /nonexistent --shell /usr/sbin/nologin baraza
COPY --from=builder /usr/local/bin/baraza /usr/local/bin/baraza
# A container is never reached on loopback: BARAZA_OIDC_ISSUER must be set
# (Baraza refuses a non-loopback address without authentication).
ENV BARAZA_LISTEN=0.0.0.0:8080 \
    BARAZA_LOG_FORMAT=json
USER baraza:baraza
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/baraza"]
CMD ["serve"]
