#!/bin/sh
# Creates the mlflow and prefect users and databases on PostgreSQL's first start (an empty data directory).
# The official postgres image runs it from /docker-entrypoint-initdb.d: compose mounts this file there, and
# Kubernetes mounts it from the postgres-init ConfigMap (infra/postgres/kustomization.yaml).
# Reads MLFLOW_DB_PASSWORD and PREFECT_DB_PASSWORD; psql quotes them (:'name'), so any character is safe here.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
    -v mlflow_password="$MLFLOW_DB_PASSWORD" -v prefect_password="$PREFECT_DB_PASSWORD" <<'SQL'
CREATE USER mlflow WITH PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
CREATE USER prefect WITH PASSWORD :'prefect_password';
CREATE DATABASE prefect OWNER prefect;
SQL
