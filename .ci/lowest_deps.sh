#!/usr/bin/env bash
# Install every direct dependency at the lowest version pyproject.toml allows (uv --resolution lowest-direct; their
# own dependencies resolve to the newest that fit) into a fresh venv and run the fast tests there, so a lower bound
# the code does not work with fails here. torch / torchvision stay at the tested 2.14.1 / 0.29.1 (the build the
# project's .venv has; the registries serve no CPU build of older ones).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LOWEST_VENV:-build/venv-lowest}
python=${PYTHON:-python3}
start=$SECONDS
"$python" -m venv --clear "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv
# the indexes pip is configured with (local mirrors, find-links) besides PyPI, every version of each considered
indexes=()
for url in $("$python" -m pip config get global.extra-index-url 2>/dev/null || true); do indexes+=(--extra-index-url "$url"); done
for dir in $("$python" -m pip config get global.find-links 2>/dev/null || true); do indexes+=(--find-links "$dir"); done
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
printf 'torch==2.14.1\ntorchvision==0.29.1\n' >"$pins"
VIRTUAL_ENV=$venv "$venv/bin/uv" pip install --quiet --resolution lowest-direct --index-strategy unsafe-best-match \
    "${indexes[@]}" --overrides "$pins" -e '.[dev]'
echo "lowest-deps: installed in $((SECONDS - start)) s:"
VIRTUAL_ENV=$venv "$venv/bin/uv" pip freeze | grep -iE '^(lightning|hydra-core|omegaconf|torchmetrics|numpy|pandas|pillow|matplotlib|tensorboard|scipy|tqdm|opencv-python-headless|onnx|onnxruntime|onnxscript|dlib-bin|muon-optimizer|optuna|submitit|pytest)=' | tr '\n' ' '
echo
"$venv/bin/python" -m pytest -q -m "not slow" -p no:cacheprovider --durations=10
echo "lowest-deps: done in $((SECONDS - start)) s"
