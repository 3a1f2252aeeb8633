#!/usr/bin/env bash
# Train img/s of the paper configuration on one GPU, Keras' JAX backend, fp32 and bf16.
#
# For a GPU machine that has JAX (with CUDA) and PyTorch but no TensorFlow and no network.
# Keras and what it imports are carried as wheels in wheels/. Prepare them on a machine with
# the project's venv (the same versions as constraints.txt):
#
#   pip download keras==3.15.1 --no-deps -d wheels/
#   for name in namex optree rich markdown-it-py mdurl pygments absl-py h5py ml-dtypes; do
#       pip download "$name==$(pip show "$name" | sed -n 's/^Version: //p')" --no-deps -d wheels/
#   done
#
# (optree, h5py and ml-dtypes are binary wheels: for a GPU machine whose Python is not 3.11,
# add --python-version X.Y --only-binary=:all:. Those the machine already has are not
# reinstalled: the venv sees its site-packages.)
# Then, in the repository root on the GPU machine:
#
#   bench/device_check.sh                  # paper config, 256 px, batch 128, jax + jax_bf16
#   BATCH=64 STEPS=10 bench/device_check.sh
#   PYTHON=.venv/bin/python bench/device_check.sh --smoke   # CPU: 64 px tiny, proves it runs
#
# It creates a venv with --system-site-packages (so JAX and CUDA come from the machine),
# installs keras from wheels/ without the network, and runs bench/train_bench.py with
# KERAS_BACKEND=jax for the variants `jax` (float32) and `jax_bf16` (mixed_bfloat16). Every
# JSON line carries device_name from nvidia-smi. With PYTHON set to an interpreter that
# already imports keras, no venv is made. Goal (issue 11): >= 1,500 img/s on an H100/H200.
set -euo pipefail

cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-wheels}
VENV=${VENV:-/tmp/pose_keras_device_venv}
BATCH=${BATCH:-128}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then
    SMOKE=1
fi

if [[ -n "${PYTHON:-}" ]] && "$PYTHON" -c "import keras" 2>/dev/null; then
    python_bin=$PYTHON
else
    if [[ ! -x "$VENV/bin/python" ]]; then
        "${PYTHON:-python3}" -m venv --system-site-packages "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --no-index --find-links "$WHEELS" keras
    python_bin=$VENV/bin/python
fi

device_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
device_name=${device_name:-none}
echo "device: $device_name; python: $python_bin" >&2
"$python_bin" -c "import jax; print('jax', jax.__version__, jax.devices())" >&2

export KERAS_BACKEND=jax
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [[ $SMOKE == 1 ]]; then
    # As on the accelerator machine: TensorFlow cannot be imported, even where installed.
    export POSE_KERAS_BENCH_WITHOUT_TENSORFLOW=1
    exec "$python_bin" bench/train_bench.py --smoke --variants jax,jax_bf16 \
        --tag "device_name=$device_name"
fi
exec "$python_bin" bench/train_bench.py --shapes paper --variants jax,jax_bf16 \
    --size 256 --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --matmul-size 8192 \
    --tag "device_name=$device_name"
