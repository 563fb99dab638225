#!/usr/bin/env bash
# The quick-start demo: a small shop database with a writer producing
# changes, Headwater capturing them (PostgreSQL → log → Parquet on local
# disk, with the `mask` transform hiding customers' emails), and a look at
# the result through `headwater log` and DuckDB. Starts from scratch on
# every run; takes about a minute once built.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(bash dev/services.sh)"
cargo build --bin headwater
HEADWATER=target/debug/headwater
CONFIG=config/quickstart.toml
export PGPASSWORD=headwater MASK_SALT=demo-salt
psql_demo() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U headwater "$@"; }

echo "== a fresh demo database, headwater_demo"
psql_demo postgres <<'SQL'
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'headwater_demo';
DROP DATABASE IF EXISTS headwater_demo WITH (FORCE);
CREATE DATABASE headwater_demo;
SQL
psql_demo headwater_demo <<'SQL'
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id int REFERENCES customers,
  amount numeric(10,2) NOT NULL,
  status text NOT NULL DEFAULT 'new',
  details jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (name, email)
  SELECT 'customer ' || g, 'customer' || g || '@example.com' FROM generate_series(1, 50) g;
INSERT INTO orders (customer_id, amount, details)
  SELECT 1 + g % 50, (g * 7.31)::numeric(10,2), jsonb_build_object('items', g % 5 + 1) FROM generate_series(1, 200) g;
SQL
rm -rf demo-data

echo "== headwater check"
"$HEADWATER" check -c "$CONFIG"

echo "== headwater run (20 seconds, while a writer changes the shop)"
"$HEADWATER" run -c "$CONFIG" 2>demo-data.log &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null || true' EXIT
for i in $(seq 1 40); do
  psql_demo headwater_demo -c "
    BEGIN;
    INSERT INTO orders (customer_id, amount, details) VALUES (1 + $i % 50, $i.99, '{\"items\": $i}');
    UPDATE orders SET status = 'paid' WHERE id = $i;
    UPDATE customers SET email = 'new$i@example.com' WHERE id = 1 + $i % 50;
    DELETE FROM orders WHERE id = 200 - $i AND $i % 4 = 0;
    COMMIT;"
  sleep 0.4
done
sleep 4
echo "   metrics: $(curl -s 127.0.0.1:9187/metrics | grep -c '^headwater_') series at http://127.0.0.1:9187/metrics"
kill -TERM $DAEMON
wait $DAEMON
trap - EXIT
mkdir -p demo-data && mv demo-data.log demo-data/headwater.log

echo "== headwater log topics"
"$HEADWATER" log topics -c "$CONFIG"
echo "== headwater log tail shop.public.customers (first 2; emails masked)"
"$HEADWATER" log tail shop.public.customers --from-beginning --format json -c "$CONFIG" | head -n 2

echo "== the Parquet archive, read by DuckDB"
"$HEADWATER_DUCKDB_PYTHON" - <<'PY'
import duckdb
archive = "demo-data/archive"
for table in ("orders", "customers"):
    print(f"-- {table}: changes by operation")
    duckdb.sql(f"""
        SELECT _op AS op, count(*) AS changes
        FROM read_parquet('{archive}/shop.public.{table}/**/*.parquet', hive_partitioning = true, union_by_name = true)
        GROUP BY 1 ORDER BY 1""").show()
print("-- the latest orders")
duckdb.sql(f"""
    SELECT _op, _commit_ts, id, amount, status, details
    FROM read_parquet('{archive}/shop.public.orders/**/*.parquet', hive_partitioning = true, union_by_name = true)
    ORDER BY _commit_ts DESC NULLS LAST LIMIT 5""").show()
PY
echo "Archive files are under demo-data/archive; the daemon's log is demo-data/headwater.log."
