# PostgreSQL 15 with pg_auto_failover (the PGDG packages the official image's apt sources already carry),
# for the `ha` profile of docker-compose.yml: one image for the monitor and the data nodes.
FROM postgres:15
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15-auto-failover pg-auto-failover-cli \
 && rm -rf /var/lib/apt/lists/*
USER postgres
ENV PGDATA=/var/lib/postgresql/pgaf XDG_CONFIG_HOME=/var/lib/postgresql/pgaf-config XDG_DATA_HOME=/var/lib/postgresql/pgaf-state
WORKDIR /var/lib/postgresql
ENTRYPOINT []
