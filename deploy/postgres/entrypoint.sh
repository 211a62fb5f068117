#!/bin/sh
# First start: create the cluster with POSTGRES_USER as its superuser (SCRAM password), the
# database POSTGRES_DB, and allow password logins from the compose network. Later starts: just
# run the server on the existing data.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_USER:?POSTGRES_USER must be set}"
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  PGPASSWORD="$POSTGRES_PASSWORD" psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
    -c "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\"" >/dev/null 2>&1 \
    || [ "$POSTGRES_DB" = "$POSTGRES_USER" ] || [ "$POSTGRES_DB" = postgres ]
  pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
  echo "postgres: initialized $PGDATA (database $POSTGRES_DB, owner $POSTGRES_USER)"
fi
if [ "${1:-}" = postgres ]; then
  shift
  exec postgres -D "$PGDATA" "$@"
fi
exec "$@"
