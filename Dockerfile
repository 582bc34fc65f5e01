# canary: multi-stage build. The package list is scripts/packages.txt, the same file scripts/deps reads, so the
# image and the install script cannot drift apart.
FROM debian:12 AS build
COPY scripts/packages.txt /tmp/packages.txt
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(awk '$2 == "build" {print $1}' /tmp/packages.txt) \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" --target canaryd canaryctl

FROM debian:12-slim AS runtime
COPY scripts/packages.txt /tmp/packages.txt
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(awk '$2 == "runtime" {print $1}' /tmp/packages.txt) \
 && rm -rf /var/lib/apt/lists/* /tmp/packages.txt \
 && useradd --system --no-create-home canary
COPY --from=build /build/canaryd /build/canaryctl /usr/local/bin/
COPY migrations /usr/share/canary/migrations
COPY policies /usr/share/canary/policies
ENV CANARY_MIGRATIONS=/usr/share/canary/migrations
USER canary
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/canaryd"]
CMD ["--listen", "0.0.0.0:9464"]
