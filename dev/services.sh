#!/usr/bin/env bash
# Installs (when missing), configures and starts the services Headwater's
# tests and demo use, on loopback only:
#
#   PostgreSQL 15  127.0.0.1:5432 and /var/run/postgresql  wal_level=logical
#   MariaDB        127.0.0.1:3306                          row binlog, full image
#   S3 (moto)      127.0.0.1:9000                          any access key works
#   Azure Blob     127.0.0.1:10000 (Azurite)               its development account
#
# Idempotent: on a machine where they already run it only changes what
# differs, and restarts a server only when a setting needs a restart.
# Needs root (apt-get, writing server configuration). Debian 12.
set -euo pipefail

PG_VERSION=15
PG_PORT=5432
MYSQL_PORT=3306
S3_PORT=9000
AZURE_PORT=10000
ROLE=headwater
PASSWORD=headwater
STATE_DIR=${HEADWATER_SERVICES_DIR:-/var/lib/headwater-dev}
VENV=$STATE_DIR/venv
TLS_DIR=$STATE_DIR/pg-tls

log() { printf '[services] %s\n' "$*" >&2; }

# The lines of FILE between our markers, markers included.
our_block() { sed -n '/# headwater-dev begin/,/# headwater-dev end/p' "$1"; }

install_packages() {
  local missing=()
  command -v pg_ctlcluster >/dev/null || missing+=("postgresql-$PG_VERSION" postgresql-client-$PG_VERSION)
  command -v mariadbd >/dev/null || missing+=(mariadb-server mariadb-client)
  command -v openssl >/dev/null || missing+=(openssl)
  python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  command -v npm >/dev/null || missing+=(nodejs npm)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# ------------------------------------------------------------------ PostgreSQL

pg_psql() { su postgres -c "psql -X -q -v ON_ERROR_STOP=1 -p $PG_PORT -h /var/run/postgresql $*"; }

pg_running() { pg_lsclusters -h 2>/dev/null | awk -v v=$PG_VERSION '$1==v && $2=="main" {print $4}' | grep -q online; }

pg_tls_files() {
  # A CA and a server certificate for 127.0.0.1/localhost, so tests can
  # connect with sslmode=verify-full and sslrootcert=$TLS_DIR/ca.crt.
  [ -s "$TLS_DIR/server.crt" ] && return
  log "generating a test CA and server certificate in $TLS_DIR"
  mkdir -p "$TLS_DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=headwater test CA" \
    -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$TLS_DIR/san.ext"
  openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
    -CAcreateserial -days 3650 -extfile "$TLS_DIR/san.ext" -out "$TLS_DIR/server.crt" 2>/dev/null
  chown postgres:postgres "$TLS_DIR/server.key" "$TLS_DIR/server.crt"
  chmod 600 "$TLS_DIR/server.key"
  chmod 644 "$TLS_DIR/ca.crt"
  chmod 755 "$STATE_DIR" "$TLS_DIR"
}

pg_hba() {
  # Our rules go first, between markers, so they win over the defaults:
  # the test roles log in with SCRAM (md5 and trust for the roles that test
  # those methods) over TCP and the socket, for SQL and replication.
  local hba=/etc/postgresql/$PG_VERSION/main/pg_hba.conf
  local block
  block=$(cat <<EOF
# headwater-dev begin
local   all,replication  ${ROLE}_trust              trust
host    all,replication  ${ROLE}_trust  127.0.0.1/32 trust
local   all,replication  ${ROLE}_md5                md5
host    all,replication  ${ROLE}_md5    127.0.0.1/32 md5
local   all,replication  ${ROLE}                    scram-sha-256
host    all,replication  ${ROLE}        127.0.0.1/32 scram-sha-256
host    all,replication  ${ROLE}        ::1/128      scram-sha-256
# Throwaway roles that tests create (privilege checks) log in without a
# password on loopback, as Debian's test image allows; loopback only.
host    all              all            127.0.0.1/32 trust
# headwater-dev end
EOF
)
  if [ "$(our_block "$hba")" != "$block" ]; then
    log "adding headwater rules to $hba"
    sed -i '/# headwater-dev begin/,/# headwater-dev end/d' "$hba"
    { printf '%s\n' "$block"; cat "$hba"; } >"$hba.new"
    chown postgres:postgres "$hba.new"
    mv "$hba.new" "$hba"
    PG_RELOAD=1
  fi
}

pg_setting() { # name value: ALTER SYSTEM when it differs; flags a restart
  local current
  current=$(su postgres -c "psql -X -At -h /var/run/postgresql -p $PG_PORT -c 'SHOW $1'")
  if [ "$current" != "$2" ]; then
    log "postgresql: $1 = $2 (was $current)"
    pg_psql -c "\"ALTER SYSTEM SET $1 = '$2'\""
    PG_RESTART=1
  fi
}

setup_postgres() {
  PG_RESTART=0
  PG_RELOAD=0
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$PG_VERSION *main"; then
    pg_createcluster $PG_VERSION main >/dev/null
  fi
  pg_tls_files
  pg_hba
  if ! pg_running; then
    log "starting postgresql $PG_VERSION"
    pg_ctlcluster --skip-systemctl-redirect $PG_VERSION main start
  fi
  pg_setting wal_level logical
  pg_setting max_replication_slots 64
  pg_setting max_wal_senders 64
  pg_setting max_connections 300
  pg_setting ssl on
  pg_setting ssl_cert_file "$TLS_DIR/server.crt"
  pg_setting ssl_key_file "$TLS_DIR/server.key"
  pg_setting password_encryption scram-sha-256
  if [ "$PG_RESTART" = 1 ]; then
    log "restarting postgresql $PG_VERSION"
    pg_ctlcluster --skip-systemctl-redirect $PG_VERSION main restart
  elif [ "$PG_RELOAD" = 1 ]; then
    pg_ctlcluster --skip-systemctl-redirect $PG_VERSION main reload
  fi
  pg_psql <<EOF
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}_md5') THEN
    CREATE ROLE ${ROLE}_md5;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}_trust') THEN
    CREATE ROLE ${ROLE}_trust;
  END IF;
END
\$\$;
ALTER ROLE $ROLE LOGIN SUPERUSER REPLICATION CREATEDB PASSWORD '$PASSWORD';
ALTER ROLE ${ROLE}_trust LOGIN SUPERUSER REPLICATION CREATEDB;
SET password_encryption = 'md5';
ALTER ROLE ${ROLE}_md5 LOGIN SUPERUSER REPLICATION CREATEDB PASSWORD '$PASSWORD';
EOF
}

# ------------------------------------------------------------------ MariaDB

mysql_root() { mariadb --protocol=socket -uroot "$@"; }

mysql_running() { mysql_root -e 'SELECT 1' >/dev/null 2>&1; }

mysql_var() { mysql_root -N -e "SELECT @@GLOBAL.$1" 2>/dev/null; }

start_mariadb() {
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 120); do mysql_running && return; sleep 0.25; done
  log "mariadb did not start; see /var/log/mysql/error.log"
  exit 1
}

setup_mariadb() {
  local cnf=/etc/mysql/my.cnf
  local block
  block=$(cat <<EOF
# headwater-dev begin
[mysqld]
bind-address = 127.0.0.1
port = $MYSQL_PORT
server_id = 1
log_bin = mysql-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
max_connections = 300
# headwater-dev end
EOF
)
  local changed=0
  if [ "$(our_block "$cnf")" != "$block" ]; then
    log "adding headwater settings to $cnf"
    sed -i '/# headwater-dev begin/,/# headwater-dev end/d' "$cnf"
    printf '\n%s\n' "$block" >>"$cnf"
    changed=1
  fi
  if mysql_running && { [ $changed = 1 ] || [ "$(mysql_var log_bin)" != 1 ] || [ "$(mysql_var binlog_format)" != ROW ]; }; then
    log "restarting mariadb"
    mariadb-admin --protocol=socket -uroot shutdown
    for _ in $(seq 1 120); do pgrep -x mariadbd >/dev/null || break; sleep 0.25; done
  fi
  mysql_running || start_mariadb
  mysql_root <<EOF
CREATE USER IF NOT EXISTS '$ROLE'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
CREATE USER IF NOT EXISTS '$ROLE'@'localhost' IDENTIFIED BY '$PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$ROLE'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$ROLE'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
EOF
}

# ------------------------------------------------------------------ S3 (moto)

listening() { python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
EOF
}

# Waits for PORT, where NAME was started logging to LOG.
wait_listening() {
  for _ in $(seq 1 120); do listening "$1" && return; sleep 0.25; done
  log "$2 did not start; see $3"
  exit 1
}

setup_python() {
  if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c 'import duckdb, azure.storage.blob' 2>/dev/null; then
    log "installing moto[server], duckdb and azure-storage-blob into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5,<6' 'duckdb>=1,<2' \
      'azure-storage-blob>=12,<13'
  fi
}

setup_s3() {
  if ! listening "$S3_PORT"; then
    log "starting the S3 server (moto) on 127.0.0.1:$S3_PORT"
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$STATE_DIR/moto.log" 2>&1 &
    wait_listening "$S3_PORT" moto "$STATE_DIR/moto.log"
  fi
}

# ------------------------------------------------------- Azure Blob (Azurite)

setup_azure() {
  local azurite=$STATE_DIR/azurite
  if [ ! -x "$azurite/node_modules/.bin/azurite-blob" ]; then
    log "installing Azurite into $azurite"
    npm install --prefix "$azurite" --no-audit --no-fund --loglevel=error 'azurite@3' >/dev/null
  fi
  if ! listening "$AZURE_PORT"; then
    log "starting the Azure Blob server (Azurite) on 127.0.0.1:$AZURE_PORT"
    mkdir -p "$azurite/data"
    nohup "$azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" \
      --location "$azurite/data" --skipApiVersionCheck --silent >"$STATE_DIR/azurite.log" 2>&1 &
    wait_listening "$AZURE_PORT" Azurite "$STATE_DIR/azurite.log"
  fi
}

main() {
  [ "$(id -u)" = 0 ] || { log "run as root (it installs packages and configures servers)"; exit 1; }
  mkdir -p "$STATE_DIR"
  install_packages
  setup_postgres
  setup_mariadb
  setup_python
  setup_s3
  setup_azure
  cat <<EOF
# Headwater test services are up. Tests read these (the values shown are the defaults):
export HEADWATER_TEST_PG_URL=postgres://$ROLE:$PASSWORD@127.0.0.1:$PG_PORT
export HEADWATER_TEST_PG_ADMIN_URL=postgres://$ROLE:$PASSWORD@127.0.0.1:$PG_PORT/postgres
export HEADWATER_TEST_PG_CA=$TLS_DIR/ca.crt
export HEADWATER_TEST_MYSQL_URL=mysql://$ROLE:$PASSWORD@127.0.0.1:$MYSQL_PORT
export HEADWATER_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export HEADWATER_TEST_AZURE_ENDPOINT=http://127.0.0.1:$AZURE_PORT
export HEADWATER_DUCKDB_PYTHON=$VENV/bin/python
EOF
}

main "$@"
