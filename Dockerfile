# The pushgate gateway in a container: built with Rust 1.95, run on Debian bookworm-slim.
#   docker build -t pushgate .
#   docker run --rm -p 8080:8080 pushgate
# The binary carries the web pages (compiled in), so the runtime image needs nothing beside it.
# The release profile builds it without debug info (docs/deployment.md states its size); for perf,
# build `--profile profiling` instead, which keeps line tables.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p pushgate \
    && cp target/release/pushgate /usr/local/bin/pushgate

FROM debian:bookworm-slim
# ca-certificates: for sources reached over TLS; curl: for the health check below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/pushgate --create-home pushgate
COPY --from=build /usr/local/bin/pushgate /usr/local/bin/pushgate
USER pushgate
WORKDIR /var/lib/pushgate
# Listen on every interface inside the container; the demo's SQLite file lives in the home.
ENV PUSHGATE_LISTEN=0.0.0.0:8080 \
    PUSHGATE_DEMO_DB=/var/lib/pushgate/pushgate-demo.db \
    PUSHGATE_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM starts the graceful drain (up to --drain-timeout, 10 s by default); Docker's default
# stop grace period is 10 s too, so raise `stop_grace_period` when raising the drain timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/pushgate"]
CMD ["serve"]
