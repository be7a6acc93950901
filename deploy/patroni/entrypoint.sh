#!/bin/sh
# Patroni takes its two passwords from the environment; compose gives them as secret files, so
# they are read here, into this process only (not the container's configuration, which
# `docker inspect` shows).
set -eu
PATRONI_SUPERUSER_PASSWORD=$(cat /run/secrets/pg_superuser_password)
PATRONI_REPLICATION_PASSWORD=$(cat /run/secrets/pg_replication_password)
export PATRONI_SUPERUSER_PASSWORD PATRONI_REPLICATION_PASSWORD
exec patroni /etc/patroni/patroni.yml
