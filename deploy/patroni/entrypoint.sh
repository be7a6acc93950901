#!/bin/sh
# Patroni takes its passwords from the environment; compose gives them as secret files, so
# they are read here, into this process only (not the container's configuration, which
# `docker inspect` shows): the superuser's and the replicator's, and the REST API's. With the
# last, Patroni refuses every changing call (switchover, failover, restart, reload,
# reinitialize, config) with 401 unless it comes as the user patroni with this password; reads
# (GET /health, /cluster) stay open. patronictl needs the same two variables for its changing
# commands (docs/deployment.md, "Authentication").
set -eu
PATRONI_SUPERUSER_PASSWORD=$(cat /run/secrets/pg_superuser_password)
PATRONI_REPLICATION_PASSWORD=$(cat /run/secrets/pg_replication_password)
PATRONI_RESTAPI_USERNAME=patroni
PATRONI_RESTAPI_PASSWORD=$(cat /run/secrets/patroni_restapi_password)
export PATRONI_SUPERUSER_PASSWORD PATRONI_REPLICATION_PASSWORD
export PATRONI_RESTAPI_USERNAME PATRONI_RESTAPI_PASSWORD
exec patroni /etc/patroni/patroni.yml
