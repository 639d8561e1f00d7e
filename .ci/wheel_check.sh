#!/usr/bin/env bash
# The package as the README tells a user to install it: build the wheel, `pip install` it (no extra, not editable)
# into a fresh venv and, from a directory outside the checkout, run a fast_dev_run training and predict with the
# released model on a photo and on a short video.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
pip=("$py" -m pip --quiet --disable-pip-version-check)
"${pip[@]}" install wheel setuptools >/dev/null
"${pip[@]}" wheel --no-deps -w "$work/dist" "$repo" >/dev/null
wheel_file=$(ls "$work/dist"/fer_lightning-*.whl)
"${pip[@]}" install "$wheel_file" >/dev/null
cd "$work"
fail() { echo "wheel check: $1"; tail -20 "$2"; exit 1; }

# a photo (a synthetic face upscaled into a larger scene) and a 12-frame video of it moving, written by OpenCV
"$py" - <<'PY'
import pathlib

import cv2
import numpy as np

import fer_lightning
import fer_lightning.config as c
from fer_lightning.data.synthetic import make_splits

assert "site-packages" in fer_lightning.__file__, fer_lightning.__file__
assert pathlib.Path(c.CONFIG_DIR, "predict.yaml").is_file(), c.CONFIG_DIR
face = cv2.resize(make_splits(n_train=7, n_val=7, n_test=7)["train"].images[3], (168, 168),
                  interpolation=cv2.INTER_CUBIC)


def scene(left: int) -> np.ndarray:
    frame = np.full((320, 400), 128, np.uint8)
    frame[60:228, left : left + 168] = face
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


cv2.imwrite("photo.jpg", scene(100))
writer = cv2.VideoWriter("clip.mp4", cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (400, 320))
for i in range(12):
    writer.write(scene(90 + 4 * i))
writer.release()
PY

"$py" -m fer_lightning.train debug=fast_dev_run logger=csv >train.log 2>&1 || fail "training failed" train.log
# the README's first command, on a photo: the default detector (the vendored MTCNN, weights from the wheel)
"$py" -m fer_lightning.predict photo.jpg output_dir=pred_photo >photo.log 2>&1 || fail "predict photo.jpg" photo.log
grep -q "released model" photo.log && grep -q "^photo.jpg: [a-z]* [0-9]*% (" photo.log \
    || fail "no result line for photo.jpg" photo.log
test -s pred_photo/predictions.csv && test -s pred_photo/annotated/photo.jpg || fail "no photo outputs" photo.log
"$py" -m fer_lightning.predict input=clip.mp4 output_dir=pred_video >video.log 2>&1 \
    || fail "predict clip.mp4" video.log
"$py" -c "import csv; assert {int(r['frame']) for r in csv.DictReader(open('pred_video/predictions.csv'))} \
    == set(range(12))" || fail "the video was not classified frame by frame to its end" video.log
test -s pred_video/annotated/clip.mp4 || fail "no annotated video" video.log
test ! -e outputs/predictions || fail "predict wrote outside output_dir" video.log
echo "wheel check: installed $(basename "$wheel_file") with plain pip install; fast_dev_run, predict on a photo and" \
     "on a video passed outside the checkout"
