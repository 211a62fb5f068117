# One image for the directory, the portal, the sync worker and the realm applier: the same code
# and the same schema/realm files the tests use. Debian's slapd, as on the development machines.
FROM python:3.11-slim-bookworm
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends slapd ldap-utils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY iacs ./iacs
COPY approval_portal ./approval_portal
COPY sync ./sync
COPY keycloak_config ./keycloak_config
COPY directory_schema ./directory_schema
RUN pip install --no-cache-dir .
RUN useradd --system --home /app iacs && mkdir -p /var/lib/iacs && chown iacs /var/lib/iacs
USER iacs
