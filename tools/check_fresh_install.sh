#!/usr/bin/env bash
# A fresh install as a company would do it: a new virtual environment in /tmp, `pip install`
# of this project (core + the extras `adpilot run` and `adpilot serve` use), then in a folder
# with no ../shared anywhere above it and ADPILOT_DATA_DIR unset:
#   adpilot run --data <exports> --llm none --json   (every fallback named in the summary)
#   adpilot serve + POST /v1/generate                 (a job result, or a clear not-available)
# Prints the seconds of each step. Usage: tools/check_fresh_install.sh [EXTRAS]
# (default EXTRAS: ml,api; e.g. "ml,api,llm" to include the local LLM binding).
# Not part of the test suite: it takes minutes (tests/test_fresh_install.py is the quick form).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
EXTRAS=${1:-ml,api}
WORK=$(mktemp -d /tmp/adpilot-fresh.XXXXXX)
PY=${PYTHON:-python3}
unset ADPILOT_DATA_DIR ADPILOT_DB ADPILOT_DATASETS_MIRROR || true
export ADPILOT_HOME="$WORK/home"
PORT=${PORT:-8765}

stamp() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

echo "work folder: $WORK"
d="$WORK"
while [ "$d" != "/" ]; do
  if [ -e "$d/shared" ] || [ -e "$(dirname "$d")/shared" ]; then
    echo "error: a shared folder is beside or above $WORK" >&2; exit 1
  fi
  d=$(dirname "$d")
done

t0=$(stamp)
$PY -m venv "$WORK/venv"
# a copy of the tracked files, so nothing of this checkout (no .venv, no caches) is used
git -C "$REPO" archive --format=tar HEAD | (mkdir -p "$WORK/src" && tar -x -C "$WORK/src")
"$WORK/venv/bin/pip" install -q "$WORK/src[$EXTRAS]"
t1=$(stamp)
echo "install ($EXTRAS): $(secs "$t0" "$t1") s"

mkdir -p "$WORK/company"
cp -r "$WORK/src/src/adpilot/sample" "$WORK/company/exports"
cd "$WORK/company"
ADPILOT="$WORK/venv/bin/adpilot"

t2=$(stamp)
"$ADPILOT" run --data exports --out out --llm none --json > run.json 2> run.err || {
  echo "adpilot run failed:" >&2; tail -20 run.err >&2; exit 1; }
t3=$(stamp)
echo "adpilot run: $(secs "$t2" "$t3") s"
"$WORK/venv/bin/python" - <<'EOF'
import json
s = json.load(open("run.json"))
print("  timings:", s["timings"])
for f in s["fallbacks"]:
    print(f"  fallback: {f['stage']} -> {f['instead']} ({f['reason']})")
assert "Fallbacks" in open(s["report"], encoding="utf-8").read() or not s["fallbacks"]
EOF
grep -c '^fallback:' run.err | sed 's/^/  warning lines: /'

DB="sqlite:///$WORK/company/out/adpilot.db"
KEY=$("$ADPILOT" keys create --scope write --db "$DB" --json | "$WORK/venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["key"])')
t4=$(stamp)
"$ADPILOT" serve --port "$PORT" --db "$DB" > serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  curl -fsS "http://127.0.0.1:$PORT/health" > /dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "serve exited:" >&2; tail -20 serve.log >&2; exit 1; }
  sleep 0.5
done
t5=$(stamp)
echo "adpilot serve up: $(secs "$t4" "$t5") s"
SEG=$("$WORK/venv/bin/python" -c "
import sqlite3; print(sqlite3.connect('out/adpilot.db').execute('select segment from segments limit 1').fetchone()[0])")
code=$(curl -sS -o gen.json -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/v1/generate?wait=120" \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d "{\"product_id\": \"P01\", \"segment\": \"$SEG\", \"channel\": \"email\", \"lang\": \"en\", \"n\": 1}")
t6=$(stamp)
echo "POST /v1/generate: HTTP $code in $(secs "$t5" "$t6") s"
"$WORK/venv/bin/python" - <<'EOF'
import json
r = json.load(open("gen.json"))
print("  status:", r.get("status"), "| error:", str(r.get("error") or r.get("detail") or "")[:300])
for f in (r.get("result") or {}).get("fallbacks", []):
    print(f"  fallback: {f['stage']} -> {f['instead']}")
EOF
if [ "$code" -ge 500 ] && [ "$code" -ne 501 ] && [ "$code" -ne 503 ]; then
  echo "error: /v1/generate answered $code" >&2; tail -30 serve.log >&2; exit 1
fi
grep -q Traceback serve.log && { echo "error: traceback in serve.log" >&2; exit 1; }
echo "ok: $WORK (total $(secs "$t0" "$(stamp)") s)"
