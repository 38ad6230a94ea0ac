# syntax=docker/dockerfile:1.7
#
# cairn's container image. Two stages:
#   build    builds a wheel of cairn and installs it, with its pinned dependencies, into the
#            virtualenv /opt/cairn/venv (deploy/docker/install.sh: the test suite runs the same
#            script, tests/deploy/test_image_install.py);
#   runtime  the same slim Python image plus only that virtualenv, run as an unprivileged user.
# Both stages use the same base image, so the venv's interpreter path (/usr/local/bin/python3.11)
# exists in the runtime stage. Every dependency has a manylinux wheel: no compiler is needed.
#
#   docker build -t cairn:0.1.0 .
#   docker run --rm -p 8000:8000 -e CAIRN_TOKENS=... cairn:0.1.0           # API + workers
#   docker run --rm cairn:0.1.0 migrate | worker | serve --no-workers ...  # any cairn command
#
# For a reproducible base, pin the digest too (FROM python:3.11.14-slim-bookworm@sha256:...).

FROM python:3.11.14-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY deploy/docker ./deploy/docker
RUN --mount=type=cache,target=/root/.cache/pip \
    sh deploy/docker/install.sh /src /opt/cairn/venv


FROM python:3.11.14-slim-bookworm AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="cairn" \
      org.opencontainers.image.description="Event-sourced order processing: HTTP API, workers and migrations" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="python:3.11.14-slim-bookworm"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/cairn/venv/bin:${PATH}"

# A fixed UID/GID (10001), so Kubernetes' runAsUser/fsGroup and volume ownership can name it.
RUN groupadd --system --gid 10001 cairn \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
       --home-dir /var/lib/cairn --create-home --shell /usr/sbin/nologin cairn

COPY --from=build /opt/cairn/venv /opt/cairn/venv

# The working directory is the user's own, so the default sqlite:///./cairn.db works for a try-out;
# production points CAIRN_DATABASE_URL at PostgreSQL and can mount the root filesystem read-only.
WORKDIR /var/lib/cairn
USER 10001:10001

EXPOSE 8000

# The slim image has no curl: the standard library asks /healthz (no token needed). It only fits
# `cairn serve`; compose.yaml and the Kubernetes manifests give the worker its own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["cairn"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
