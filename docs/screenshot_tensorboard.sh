#!/usr/bin/env bash
# Reproduce docs/tensorboard.png: TensorBoard's TIME SERIES page (val/acc, val/loss, val/macro_f1 of two runs
# overlaid) for a tiny synthetic 2-job sweep over optimizers, shot with headless Chromium.
#
#   bash docs/screenshot_tensorboard.sh            # ~1 min on 2 CPU cores
#
# Needs: the project's venv (PYTHON=...), Debian's chromium (apt-get install chromium; CHROMIUM=...), node + npm
# (playwright-core is npm-installed into a temp dir), optionally pngquant (else Pillow shrinks the PNG).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
chromium=${CHROMIUM:-/usr/bin/chromium}
out=${OUT:-$repo/docs/tensorboard.png}
work=$(mktemp -d)
tb_pid=
cleanup() { if [[ -n $tb_pid ]]; then kill "$tb_pid" 2>/dev/null; wait "$tb_pid" 2>/dev/null; fi; rm -rf "$work"; }
trap cleanup EXIT

# 1. The sweep: synthetic data (no download), a few small batches, 6 epochs so the curves have 6 points.
PYTHONWARNINGS=ignore OMP_NUM_THREADS=1 "$python" -m fer_lightning.train -m optimizer=adamw,sgd \
  data.synthetic.n_train=384 data.synthetic.n_val=96 data.synthetic.n_test=96 data.batch_size=32 \
  data.eval_batch_size=96 trainer.max_epochs=6 +trainer.limit_train_batches=4 +trainer.limit_val_batches=1 \
  +trainer.limit_test_batches=1 trainer.num_sanity_val_steps=0 trainer.log_every_n_steps=1 \
  callbacks.progress_bar.refresh_rate=0 "hydra.sweep.dir=$work/sweep" >"$work/train.log" 2>&1 \
  || { tail -30 "$work/train.log"; exit 1; }

# 2. TensorBoard on a free port (--port 0); its URL is only printed on stderr, so read it from the log.
"$python" -m tensorboard.main --logdir "$work/sweep/tensorboard" --host 127.0.0.1 --port 0 \
  --load_fast false --reload_interval 1 >/dev/null 2>"$work/tb.log" &
tb_pid=$!
url=
for _ in $(seq 120); do  # up to 60 s: the URL, then both runs loaded (served before the first reload ends)
  url=${url:-$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/tb.log" | head -1 || true)}
  [[ -n $url && $(curl -sf "$url/data/runs") == *optimizer=adamw*optimizer=sgd* ]] && break
  sleep 0.5
done
[[ $(curl -sf "$url/data/runs") == *optimizer=adamw*optimizer=sgd* ]] || { cat "$work/tb.log"; exit 1; }

# 3. Headless Chromium via playwright-core: TensorBoard is a JS single-page app whose charts are drawn late
# (plain `chromium --screenshot` catches empty cards), so wait until every card shows both runs.
# The flags: root needs --no-sandbox; without the background-networking ones Chromium's own connections are
# refused on a closed network. Playwright gives it a fresh empty profile (--user-data-dir) itself.
npm install --silent --no-audit --no-fund --prefix "$work/node" playwright-core >/dev/null
cat >"$work/node/shot.js" <<'EOF'
const { chromium } = require('playwright-core');
const [executablePath, base, png] = process.argv.slice(2);
(async () => {
  const browser = await chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${base}/?tagFilter=${encodeURIComponent('^val/(acc|loss|macro_f1)$')}#timeseries`);
  await page.click('button[aria-label="Close side pane"]');  // the settings pane opens by default
  await page.waitForFunction(() => { const cards = [...document.querySelectorAll('scalar-card')];
    return cards.length === 3 && cards.every(c => /optimizer=adamw[\s\S]*optimizer=sgd/.test(c.textContent)); },
    null, { timeout: 60000 });
  await page.waitForLoadState('networkidle');
  await page.waitForTimeout(2000);  // the line charts draw on a canvas after their data arrives
  await page.screenshot({ path: png });
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
EOF
node "$work/node/shot.js" "$chromium" "$url" "$work/raw.png"

# 4. Shrink it (a ~100 KB RGB PNG) to 256 colours: the flat UI colours survive.
if command -v pngquant >/dev/null; then
  pngquant --force --strip --output "$out" 256 "$work/raw.png"
else
  "$python" -c 'import sys; from PIL import Image
Image.open(sys.argv[1]).convert("RGB").quantize(256).save(sys.argv[2], optimize=True)' "$work/raw.png" "$out"
fi
echo "$out: $(wc -c <"$out") bytes"
