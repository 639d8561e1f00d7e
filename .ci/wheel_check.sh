#!/usr/bin/env bash
# The package as a user installs it: build the wheel, install it (not editable) into a fresh venv, and from a
# directory outside the checkout run a fast_dev_run training and a prediction with the released model.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check wheel setuptools >/dev/null
"$py" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$work/dist" "$repo" >/dev/null
wheel_file=$(ls "$work/dist"/fer_lightning-*.whl)
"$py" -m pip install --quiet --disable-pip-version-check "${wheel_file}[infer]" >/dev/null
cd "$work"
"$py" - <<'PY'
import pathlib, fer_lightning, fer_lightning.config as c
assert "site-packages" in fer_lightning.__file__, fer_lightning.__file__
assert pathlib.Path(c.CONFIG_DIR, "train.yaml").is_file(), c.CONFIG_DIR
from PIL import Image
from fer_lightning.data.synthetic import make_splits
Image.fromarray(make_splits(n_train=7, n_val=7, n_test=7)["train"].images[3]).save("face.png")
PY
"$py" -m fer_lightning.train debug=fast_dev_run logger=csv >train.log 2>&1 || { tail -20 train.log; exit 1; }
"$py" -m fer_lightning.predict input=face.png detector=whole_image output_dir=pred >predict.log 2>&1 \
    || { tail -20 predict.log; exit 1; }
grep -q "released model" predict.log
# the default detector (the vendored MTCNN, weights from the wheel) on a synthetic face pasted into a larger image
"$py" - <<'PY'
import numpy as np
from PIL import Image
face = Image.open("face.png").resize((168, 168))
canvas = Image.fromarray(np.full((320, 400), 128, np.uint8))
canvas.paste(face, (100, 60))
canvas.save("scene.png")
PY
"$py" -m fer_lightning.predict input=scene.png output_dir=pred_mtcnn >mtcnn.log 2>&1 || { tail -20 mtcnn.log; exit 1; }
grep -q "1 faces" mtcnn.log || { tail -20 mtcnn.log; exit 1; }
test -s pred/predictions.csv
echo "wheel check: installed $(ls "$work/dist"), fast_dev_run and predict with the released model passed outside the checkout"
