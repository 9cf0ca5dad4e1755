# The control-plane image: pinnace-apiserver, pinnace-scheduler, pinnace-controller-manager
# and the `pinnace` CLI. Node components (CRI shim, CNI plugins, kubelet, kube-proxy) run on
# the host, where they need docker, namespaces and iptables.
#
#   docker build -t pinnace/control-plane:0.1.0 .
#   docker run --rm -p 6443:6443 -v pinnace-state:/var/lib/pinnace pinnace/control-plane:0.1.0 \
#       pinnace-apiserver --listen 0.0.0.0:6443
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/pinnace
COPY pyproject.toml README.md ./
COPY hack/constraints.txt hack/constraints.txt
COPY protos protos
COPY services services
COPY runtime_shims runtime_shims
COPY cni_plugins cni_plugins
COPY cmd cmd
RUN python3 -m venv /opt/pinnace/venv \
    && /opt/pinnace/venv/bin/pip install --no-cache-dir -c hack/constraints.txt . \
    && rm -rf /root/.cache

ENV PATH=/opt/pinnace/venv/bin:$PATH
RUN mkdir -p /var/lib/pinnace && chown 65534:65534 /var/lib/pinnace
VOLUME /var/lib/pinnace
EXPOSE 6443
USER 65534:65534
CMD ["pinnace-apiserver", "--listen", "0.0.0.0:6443", "--sqlite-path", "/var/lib/pinnace/state.db"]
