#!/usr/bin/env bash
# The seeded ablations (and cnn_best's seed spread) on a CUDA machine that receives only the repository, in two
# parts: the CPU needs ~20 min per pair of cnn_fast jobs (AVX512-BF16) or ~70 min (AVX2 only), a GPU seconds per job.
#
# Prepare once on the machine with the data (both go to outputs/carry/, which git ignores; never commit them):
#   make device-prep DATA=/path/to/fer2013.csv.gz     # FER-2013 as LZMA uint8 arrays (56 MB) + 4 wheels
# Then on the CUDA machine, with outputs/carry/ copied beside the repository and OUT set to an empty folder:
#   bash benchmarks/device_ablations.sh a      (then b; each writes runs-<part>.tar.gz into OUT)
# and back here: tar -xzf runs-a.tar.gz -C outputs/ (and tensorboard-a.tar.gz); python -m fer_lightning.report
#   outputs/multiruns/device/<sweep> --baseline ... --time-to 0.60,0.65 (one sweep's jobs compare among
#   themselves: GPU bf16 numerics differ from the CPU runs in docs/results.md, so never pair across the two).
#
# Parts (jobs in order of importance; every sweep is cut at DEADLINE_S seconds after the start, one
# that would start in its last 30 s is skipped, so the tarballs are written before DEADLINE_S + ~60 s; a rerun
# of the same part on the same machine skips the finished jobs, skip_completed=true):
#   a: optimizer x seeds 1-5 (15 jobs); imbalance none/sampler/weighted_loss x seeds 1-5 at power 0.5 (15) and
#      sampler/weighted_loss at power 1 (10)
#   b: cnn_fast seed 1 alone (the GPU time-to-accuracy), scheduler x seeds 1-3 (21), cnn_best seeds 1-2
#   smoke: every step above on synthetic data, 1 tiny epoch per job, on whatever device there is (test it here:
#      OUT=/tmp/out PYTHON=.venv/bin/python bash benchmarks/device_ablations.sh smoke)
set -euo pipefail
part=${1:?usage: device_ablations.sh a|b|smoke}
case $part in a|b|smoke) ;; *) echo "device_ablations.sh: unknown part '$part'; expected a, b or smoke" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
CARRY=${CARRY:-outputs/carry}
OUT=${OUT:?OUT is the folder the results tarball goes to}
DEADLINE_S=${DEADLINE_S:-480}
N_JOBS=${N_JOBS:-6}
PYTHON=${PYTHON:-python3}
RUNS=outputs/multiruns/device
start=$SECONDS
mkdir -p "$RUNS"
log() { echo "[device_ablations +$((SECONDS - start))s] $*" | tee -a "$OUT/log.txt"; }

# the GPU image has torch, lightning, torchmetrics, pandas, tensorboard, joblib; not Hydra or its launcher
if ! "$PYTHON" -c "import hydra, hydra_plugins.hydra_joblib_launcher" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$CARRY"/wheels/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU") \
    | tee -a "$OUT/log.txt"

seeds5=seed=1,2,3,4,5 seeds3=seed=1,2,3
if [[ $part == smoke ]]; then
    data=(data=synthetic data.synthetic.n_train=128 data.synthetic.n_val=32 data.synthetic.n_test=32)
    tiny=(trainer.max_epochs=1 +trainer.limit_train_batches=2 +trainer.limit_val_batches=1 data.batch_size=16
          data.eval_batch_size=16 final_tta=[identity])
    device=(); N_JOBS=2 seeds5=seed=1,2 seeds3=seed=1
else
    data=(data.path="$CARRY/fer2013.npz")
    tiny=()
    device=(trainer=gpu)
fi

sweep() {  # sweep <name> <hydra overrides...>: one multirun into outputs/multiruns/device/<name>
    local name=$1; shift
    local left=$((DEADLINE_S - (SECONDS - start)))
    if (( left < 30 )); then log "skipped $name: ${left}s left before DEADLINE_S=$DEADLINE_S"; return; fi
    log "start $name (at most ${left}s): $*"
    if timeout -k 10 "$left" "$PYTHON" -m fer_lightning.train -m launcher=parallel_cpu "${device[@]}" hydra.launcher.n_jobs="$N_JOBS" \
        threads_per_job=2 skip_completed=true "${data[@]}" "${tiny[@]}" "$@" \
        hydra.sweep.dir="$RUNS/$name" >"$RUNS/$name.log" 2>&1; then
        log "done $name"
    else
        log "FAILED $name (exit $?; 124: cut at DEADLINE_S): tail of $RUNS/$name.log:"; tail -5 "$RUNS/$name.log" | tee -a "$OUT/log.txt"
    fi
}

case $part in
    a|smoke)
        sweep optimizer experiment=ablation_optimizer $seeds5
        sweep imbalance experiment=ablation_imbalance $seeds5
        sweep imbalance_power1 experiment=ablation_imbalance imbalance=sampler,weighted_loss imbalance.power=1.0 \
            $seeds5
        ;;&
    b|smoke)
        sweep cnn_fast_alone experiment=cnn_fast seed=1
        sweep scheduler experiment=ablation_scheduler $seeds3
        sweep cnn_best experiment=cnn_best seed=1,2
        ;;
    *) ;;
esac

# records, configs, sweep logs in one tarball, TensorBoard events in another (the device returns at most 8 files of
# 16 MiB); checkpoints (2-7 MB each) stay behind
tar -czf "$OUT/runs-$part.tar.gz" --exclude='*.ckpt' --exclude='.submitit' --exclude=tensorboard -C outputs \
    multiruns/device
log "wrote runs-$part.tar.gz ($(du -h "$OUT/runs-$part.tar.gz" | cut -f1))"
find outputs/multiruns/device -path '*/tensorboard/*' -type f -print0 \
    | tar -czf "$OUT/tensorboard-$part.tar.gz" --null -T - --transform 's,^outputs/,,'
if (( $(stat -c %s "$OUT/tensorboard-$part.tar.gz") > 16000000 )); then
    rm "$OUT/tensorboard-$part.tar.gz"; log "TensorBoard events over 16 MB: not returned"
else
    log "wrote tensorboard-$part.tar.gz ($(du -h "$OUT/tensorboard-$part.tar.gz" | cut -f1))"
fi
