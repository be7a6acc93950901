#!/bin/sh
# Patroni runs this once, on the node that initialises the cluster, with a superuser connection
# string as $1: create the roles and the database the services use, each password read from its
# secret file by psql itself (never on a command line). fitness owns the schema (the user
# service and its migrations); fitness_etl only reads it (the nightly ETL), tables the
# migrations create later included.
set -eu
# Where the secret files are: compose's /run/secrets, or elsewhere on another machine.
SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
export SECRETS_DIR
psql "$1" --set=ON_ERROR_STOP=1 <<'SQL'
\set app_password `cat "$SECRETS_DIR/pg_app_password"`
\set etl_password `cat "$SECRETS_DIR/pg_etl_password"`
CREATE ROLE fitness LOGIN PASSWORD :'app_password';
CREATE ROLE fitness_etl LOGIN PASSWORD :'etl_password';
CREATE DATABASE fitness OWNER fitness;
\connect fitness
ALTER DEFAULT PRIVILEGES FOR ROLE fitness IN SCHEMA public GRANT SELECT ON TABLES TO fitness_etl;
SQL
