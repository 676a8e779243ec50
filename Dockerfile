# hendelse as one small container: built on Debian 12, run on debian:bookworm-slim with only the
# runtime libraries, as a non-root user, data in the volume /data, listening on 0.0.0.0:5080.
#
#   docker build -t hendelse .
#   head -c 32 /dev/urandom | base64 > jwt-secret
#   docker run -d -p 5080:5080 -v hendelse-data:/data \
#     -v "$PWD/jwt-secret:/run/secrets/jwt-secret:ro" \
#     -e HENDELSE_JWT_HS256_SECRET_FILE=/run/secrets/jwt-secret hendelse
#
# The default command is the production profile (--auth jwt, https webhooks to public addresses
# only), which will not start without a key: give one with HENDELSE_JWT_HS256_SECRET_FILE or
# HENDELSE_JWT_PUBLIC_KEY_FILE, or a config file (--config). As a local stand-in for Altinn:
#   docker run --rm -p 5080:5080 hendelse serve --dev --listen 0.0.0.0:5080 --data /data
# README.md ("Run as a container") has the rest.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential meson ninja-build pkg-config python3 \
      libevent-dev libevhtp-dev libonig-dev libyajl-dev liblmdb-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN meson setup /build -Dbuildtype=release -Dblackbox=false \
 && meson compile -C /build server/hendelse \
 && install -D -m 0755 /build/server/hendelse /out/hendelse \
 && /out/hendelse --version

FROM debian:bookworm-slim AS runtime
# Exactly the packages of the shared libraries the binary links (test/blackbox/test_container.py
# checks this list against ldd), and the CA store for https webhook endpoints.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-core-2.1-7 libevent-openssl-2.1-7 libevhtp0 libyajl2 liblmdb0 \
      libssl3 libonig5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 hendelse \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin hendelse \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && chmod 0700 /data
COPY --from=build /out/hendelse /usr/local/bin/hendelse
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 5080
# The slim image has no curl: bash's /dev/tcp sends one HTTP/1.0 request and the status line must
# be 200 (GET /health answers 503 when the store cannot be read). Plain http only: with
# --tls-cert, replace it (e.g. --health-cmd with openssl s_client, or the orchestrator's probe).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5080 && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hendelse"]
CMD ["serve", "--listen", "0.0.0.0:5080", "--data", "/data"]
