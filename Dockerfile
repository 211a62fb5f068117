# The product image: one image for the directory (slapd through `iacs directory serve`), the
# portal, the sync worker and the realm applier. Debian's Python 3.11 and slapd; the Python
# packages come from requirements.lock with their hashes, the project itself with --no-deps, as a
# normal (non-editable) install that needs no checkout beside it. Runs as the user iacs.
#
# Build with BuildKit (DOCKER_BUILDKIT=1). BASE_IMAGE is any Debian 12 image; the project's
# launcher uses one it makes itself with mmdebstrap (iacs/stack/docker.py). Behind a TLS-
# inspecting proxy pass its CA bundle for the build only, never into the image:
#   docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt .
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/iacs
COPY requirements.lock /tmp/requirements.lock
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
 && /opt/iacs/bin/pip install --no-cache-dir --disable-pip-version-check \
      --require-hashes --only-binary=:all: -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY iacs /src/iacs
COPY approval_portal /src/approval_portal
COPY sync /src/sync
COPY keycloak_config /src/keycloak_config
COPY directory_schema /src/directory_schema
RUN /opt/iacs/bin/pip install --no-cache-dir --disable-pip-version-check \
      --no-deps --no-build-isolation --no-index /src

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PATH=/opt/iacs/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 slapd ldap-utils \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/iacs --shell /usr/sbin/nologin iacs \
 && mkdir -p /var/lib/iacs/ldap /var/lib/iacs/sync \
 && chown -R iacs:iacs /var/lib/iacs && chmod 0700 /var/lib/iacs/ldap
COPY --from=build /opt/iacs /opt/iacs
# Where `iacs directory serve --publish-ca` puts the directory's CA for its clients (a volume
# the clients mount read-only; a fresh volume takes this owner and mode from the image).
RUN install -d -o iacs -g iacs -m 0755 /var/lib/iacs/directory-ca
USER iacs
WORKDIR /var/lib/iacs
CMD ["iacs", "--help"]
