# A small image of gazette: built with the Rust toolchain, run on Debian slim.
#   docker build -t gazette .
#   docker run -d --name gazette -v "$PWD:/data" -e GAZETTE_SECRET=… -e GAZETTE_SMTP_URL=… gazette
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin gazette

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /data gazette
COPY --from=build /src/target/release/gazette /usr/local/bin/gazette
USER gazette
WORKDIR /data
VOLUME ["/data"]
ENV GAZETTE_CONFIG=/data/gazette.toml GAZETTE_LOG_FORMAT=json
STOPSIGNAL SIGTERM
ENTRYPOINT ["gazette"]
CMD ["run"]
