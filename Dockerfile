# watcherd as a long-running container, running as uid:gid 10001:10001. State lives on the
# /var/lib/watcherd volume; the configuration is mounted at /etc/watcherd/watcherd.toml;
# secrets may also come from files under /run/secrets (watcherd_trakt__client_id, ...).
# A bind mount (and a Compose file secret) keeps its host owner and mode, so a root-only
# 0600 file cannot be read here: give each such file to group 10001, mode 0640
# (`install -o root -g 10001 -m 0640 watcherd.toml /etc/watcherd/`). The image's user reads
# it, no other user of the host does, and no secret has to travel in an environment
# variable (which `docker inspect` shows). README, "In a container", has the whole recipe.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 watcherd \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin watcherd \
    && mkdir -p /var/lib/watcherd /etc/watcherd \
    && chown watcherd:watcherd /var/lib/watcherd \
    && chmod 0700 /var/lib/watcherd

WORKDIR /src
COPY pyproject.toml README.md ./
COPY watcherd ./watcherd
RUN pip install --no-cache-dir . && rm -rf /src

WORKDIR /var/lib/watcherd
USER 10001:10001
ENV WATCHERD_CONFIG=/etc/watcherd/watcherd.toml \
    WATCHERD_STATE_FILE=/var/lib/watcherd/state.db
VOLUME ["/var/lib/watcherd"]

ENTRYPOINT ["watcherd"]
CMD ["run"]
