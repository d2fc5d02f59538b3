# strom: build with the Rust toolchain, run on a slim Debian with just the binary.
FROM rust:1-bookworm AS build
# protoc and the well-known protos: the etcd client of the `cluster` feature
# compiles etcd's .proto files.
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY vendor ./vendor
COPY src ./src
# Every workspace member, and every target Cargo.toml declares (the [[bench]]),
# must be present for cargo to read the manifest.
COPY bench ./bench
COPY benches ./benches
RUN cargo build --release --locked --bin strom --features cluster

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/strom strom \
    && mkdir -p /var/lib/strom \
    && chown strom /var/lib/strom
COPY --from=build /src/target/release/strom /usr/local/bin/strom
USER strom
VOLUME /var/lib/strom
EXPOSE 9092 9644
ENV STROM_DATA_DIR=/var/lib/strom \
    STROM_LISTEN=0.0.0.0:9092
ENTRYPOINT ["strom"]
CMD ["serve"]
