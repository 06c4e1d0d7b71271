#!/usr/bin/env bash
# `make demo`: seed the sandbox shop, serve it, run the refunds robot, write the report.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${DEMO_PORT:-8765}"
DATA="${DEMO_DATA:-var/sandbox}"
REFUNDS="${DEMO_REFUNDS:-200}"
PRODUCTS="${DEMO_PRODUCTS:-200}"
PARCELS="${DEMO_PARCELS:-100}"

# A fresh random password for this demo's back-office account, handed to the robot through
# the environment (see docs/operating.md: credentials). It is never written to a file or a log.
SANDBOX_PASSWORD="$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(16))')"
export SANDBOX_PASSWORD
export ROBOTS_CREDENTIAL_DEMO_SHOP_USERNAME=robot
export ROBOTS_CREDENTIAL_DEMO_SHOP_PASSWORD="$SANDBOX_PASSWORD"
export ROBOTS_CREDENTIAL_DEMO_WAREHOUSE_USERNAME=robot   # the warehouse terminal's login
export ROBOTS_CREDENTIAL_DEMO_WAREHOUSE_PASSWORD="$SANDBOX_PASSWORD"

if "$BIN/python" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PORT)) != 0)"; then
  echo "port $PORT is in use: stop what runs there or set DEMO_PORT" >&2
  exit 2
fi

echo "== seeding $REFUNDS refunds, $PRODUCTS products and $PARCELS returned parcels into $DATA"
"$BIN/robots" sandbox seed --data "$DATA" --refunds "$REFUNDS" --products "$PRODUCTS" \
  --parcels "$PARCELS" --orders "$((PARCELS * 4))" --shipments "${DEMO_SHIPMENTS:-120}" \
  --live-products 40 --conversations 300 \
  --seed "$(date +%j)"
"$BIN/robots" sandbox serve --data "$DATA" --port "$PORT" > "$DATA/serve.log" 2>&1 &
SERVER=$!
PIDS="$SERVER"
trap 'kill $PIDS 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  "$BIN/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null && break
  kill -0 $SERVER 2>/dev/null || { cat "$DATA/serve.log" >&2; exit 1; }
  sleep 0.1
done
echo "== sandbox back office on http://127.0.0.1:$PORT/ (user: robot), storefront on http://127.0.0.1:$PORT/shop"

echo "== the second back office (商家工作台, /v2): what its scenario reads there, then a dry run"
"$BIN/robots" scenario probe --target demo-shop-2 --base-url "http://127.0.0.1:$PORT/"
"$BIN/robots" run refunds --scenario scenarios/demo-shop-2/refunds.toml --dry-run \
  --base-url "http://127.0.0.1:$PORT/"
echo "== refunds robot, dry run first (changes nothing)"
"$BIN/robots" run refunds --dry-run --base-url "http://127.0.0.1:$PORT/"
echo "== refunds robot"
"$BIN/robots" run refunds --verbose --base-url "http://127.0.0.1:$PORT/"
echo "== second run: nothing new to approve"
"$BIN/robots" run refunds --base-url "http://127.0.0.1:$PORT/"
echo "== page scan: price errors and banned words on every product page (read-only)"
"$BIN/robots" run pagescan --base-url "http://127.0.0.1:$PORT/" --price-list "$DATA/price-list.xlsx"
echo "== stalled-shipment check (the example robot): open shipments whose tracking has not moved for 3 days"
"$BIN/robots" run stalled --base-url "http://127.0.0.1:$PORT/"
echo "== 物流异常 as a flow file (no Python): its CEL rules hand returned, refused and stalled parcels to a person"
"$BIN/robots" run flow --base-url "http://127.0.0.1:$PORT/"
echo "== 直播挂链 as a flow file: each SKU of live-skus.csv added to the live session once, a dry run first"
"$BIN/robots" run flow live-listing --dry-run --base-url "http://127.0.0.1:$PORT/"
"$BIN/robots" run flow live-listing --base-url "http://127.0.0.1:$PORT/"
"$BIN/robots" run flow live-listing --base-url "http://127.0.0.1:$PORT/"   # again: nothing to add
echo "== 数据抓取 as a flow file: price and stock of each watched SKU on the storefront, marked against the last run"
"$BIN/robots" run flow price-watch --base-url "http://127.0.0.1:$PORT/"
echo "== 商品改价/上下架 as a flow file: the reviewed price-review.xlsx applied once each; below cost, over 30 % or a price changed since the review to a person"
"$BIN/robots" run flow product-ops --base-url "http://127.0.0.1:$PORT/"
echo "== 数据抓取 again: the SKUs just changed are marked 涨价 / 降价"
"$BIN/robots" run flow price-watch --base-url "http://127.0.0.1:$PORT/"
echo "== 客服质检 as a flow file: every agent turn against the QC team's word classes; hits to a person, hourly counts per class"
"$BIN/robots" run flow service-qc --base-url "http://127.0.0.1:$PORT/"
echo "== the warehouse terminal (a desktop program) on a virtual X display"
# Xvfb picks a free display itself and writes its number once it holds it
mkdir -p var
rm -f var/xvfb-display
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3> var/xvfb-display > /dev/null 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 200); do grep -q . var/xvfb-display 2>/dev/null && break; sleep 0.1; done
N=$(head -n 1 var/xvfb-display)
[ -n "$N" ] || { echo "demo: Xvfb did not start" >&2; exit 1; }
export DISPLAY=":$N" XDG_SESSION_TYPE=x11
# started in var/exports: an export whose path the program got wrong lands there, not here
mkdir -p var/exports
exports=$(realpath var/exports) data_abs=$(realpath "$DATA") bin_abs=$(realpath "$BIN")
(cd "$exports" && exec "$bin_abs/robots" sandbox terminal --data "$data_abs" \
  --export-dir "$exports" > "$data_abs/terminal.log" 2>&1) &
PIDS="$PIDS $!"
for _ in $(seq 100); do xdotool search --class Tk > /dev/null 2>&1 && break; sleep 0.1; done
not_received() {  # refunds waiting for a person because the goods are not back yet
  "$BIN/python" - <<'PY'
import openpyxl
wb = openpyxl.load_workbook("reports/open-exceptions.xlsx")
rows = list(wb["退款待人工处理"].iter_rows(values_only=True))
at = rows[0].index("原因代码")
print(sum("RETURN_NOT_RECEIVED" in str(r[at]) for r in rows[1:]))
PY
}
echo "== refunds waiting because the goods are not received (RETURN_NOT_RECEIVED): $(not_received)"
echo "== returns robot, dry run first (links nothing)"
"$BIN/robots" run returns --dry-run --base-url "http://127.0.0.1:$PORT/"
echo "== returns robot: link the confident matches in the terminal, verify each on the web"
"$BIN/robots" run returns --base-url "http://127.0.0.1:$PORT/"
echo "== refunds robot again: linking a parcel recorded its receipt (入库), so those refunds can be confirmed"
"$BIN/robots" run refunds --base-url "http://127.0.0.1:$PORT/"
echo "== refunds still waiting because the goods are not received: $(not_received)"
echo "== a person reviews the refunds workbook: approves two over-the-cap refunds, holds one"
REVIEWED=var/reviewed-refunds.xlsx
REPORT="$(ls -1t reports/refunds-*.xlsx | grep -v -- -dry-run | tail -1)"
"$BIN/python" - "$REPORT" "$REVIEWED" <<'PY'
import sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
sheet = wb["待人工处理"]
column = {c.value: c.column - 1 for c in sheet[1]}
rows = [r for r in sheet.iter_rows(min_row=2) if r[column["原因代码"]].value == "OVER_AMOUNT_CAP"]
for row, decision in zip(rows, ["同意", "同意", "暂缓"]):
    row[column["处理决定"]].value, row[column["复核人"]].value = decision, "演示复核人"
wb.save(sys.argv[2])
PY
"$BIN/robots" apply "$REVIEWED" --base-url "http://127.0.0.1:$PORT/"
echo "== run history"
"$BIN/robots" runs --limit 10
echo "== reports (open-exceptions.xlsx: everything still waiting for a person)"
ls -1t reports/*.xlsx | head -10
echo "== the console (控制台): decide the queue, watch and start runs, in the browser"
echo "   $BIN/robots console users add YOURNAME --role operator   # then:"
echo "   $BIN/robots console    # http://127.0.0.1:8470/ (docs/console.md)"
