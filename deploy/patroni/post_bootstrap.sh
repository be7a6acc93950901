#!/bin/sh
# Patroni runs this once, on the node that initialises the cluster, with a superuser connection
# string as $1: create the role and database the services use (APP_DB_PASSWORD from compose).
set -eu
psql "$1" --set=ON_ERROR_STOP=1 --set=password="$APP_DB_PASSWORD" <<'SQL'
CREATE ROLE fitness LOGIN PASSWORD :'password';
CREATE DATABASE fitness OWNER fitness;
SQL
