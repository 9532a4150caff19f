# watcherd as a long-running container, running as uid:gid 10001:10001. State lives on the
# /var/lib/watcherd volume; the configuration is mounted at /etc/watcherd/watcherd.toml;
# secrets may also come from files under /run/secrets (watcherd_trakt__client_id, ...).
# A bind mount (and a Compose file secret) keeps its host owner and mode, so a root-only
# 0600 file cannot be read here: give each such file to group 10001, mode 0640
# (`install -o root -g 10001 -m 0640 watcherd.toml /etc/watcherd/`). The image's user reads
# it, no other user of the host does, and no secret has to travel in an environment
# variable (which `docker inspect` shows). README, "In a container", has the whole recipe;
# compose.yaml beside this file puts it together.
#
# Two stages: the first builds wheels of watcherd and of everything it needs; the second, the
# image, installs those wheels and nothing else, so no build tool, source tree or pip cache
# reaches it.

FROM python:3.12-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY watcherd ./watcherd
RUN pip wheel --no-cache-dir --wheel-dir=/wheels .


FROM python:3.12-slim

LABEL org.opencontainers.image.title="watcherd" \
      org.opencontainers.image.description="Notifies you when your Trakt friends check in or scrobble, through any Apprise target." \
      org.opencontainers.image.version="0.2.0" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.documentation="https://pypi.org/project/watcherd/"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 watcherd \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin watcherd \
    && mkdir -p /var/lib/watcherd /etc/watcherd \
    && chown watcherd:watcherd /var/lib/watcherd \
    && chmod 0700 /var/lib/watcherd

# The wheels are mounted for this step only: they take no layer of the image. pip itself goes
# afterwards, since nothing is installed at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl \
    && pip uninstall --yes pip

WORKDIR /var/lib/watcherd
USER 10001:10001
ENV WATCHERD_CONFIG=/etc/watcherd/watcherd.toml \
    WATCHERD_STATE_FILE=/var/lib/watcherd/state.db
VOLUME ["/var/lib/watcherd"]

# Healthy when the daemon holds the state file and finished a poll cycle within two of its
# intervals (read from the state file; no port). The first cycle gets the start period.
HEALTHCHECK --interval=60s --timeout=30s --start-period=10m --retries=3 \
    CMD ["watcherd", "health"]
# watcherd finishes the work in hand within 10 s of SIGTERM: `docker stop` waits that long.
STOPSIGNAL SIGTERM

ENTRYPOINT ["watcherd"]
CMD ["run"]
