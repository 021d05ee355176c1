#!/usr/bin/env bash
# Time inception_v3 training steps on a GPU machine (prepared for a later session; not run here).
#
#   bash benchmarks/gpu_train.sh [IMAGE_SIZE] [BATCH] [STEPS]
#
# Uses Keras 3 on TensorFlow when it is installed, else KERAS_BACKEND=torch (torch with CUDA).
# Prints the devices, compile/warm-up time, steady-state images/s of model.fit on in-memory
# patches, and the same through our PatchSequence input pipeline (augmented), for 1-phase
# and 4-phase (stacked) inputs. Writes a JSON summary to ${OUT:-.}/gpu_train.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
SIZE=${1:-96}
BATCH=${2:-64}
STEPS=${3:-50}
if ! "$PY" -c "import tensorflow" 2>/dev/null; then
  export KERAS_BACKEND=torch
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
SIZE=$SIZE BATCH=$BATCH STEPS=$STEPS OUT_DIR=${OUT:-.} "$PY" - <<'PYEOF'
import json, os, sys, time
sys.path.insert(0, ".")
import numpy as np
import keras
from inference import training
from inference.experiments import get_experiment

size, batch, steps = int(os.environ["SIZE"]), int(os.environ["BATCH"]), int(os.environ["STEPS"])
print(training.describe_devices(), flush=True)
results = {"backend": keras.backend.backend(), "devices": training.describe_devices(), "size": size, "batch": batch, "runs": []}
for phases in (1, 4):
    experiment = get_experiment("source-study-inception", {"batch_size": batch, "patch": {"size_px": size}, "epochs": 1})
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(batch * steps, size, size, phases)).astype("float32")
    y = (np.arange(len(x)) % 2).astype("float32")
    started = time.perf_counter()
    model = training.compiled_model(experiment, x.shape[1:], 0)
    model.fit(x[:batch * 2], y[:batch * 2], batch_size=batch, epochs=1, verbose=0)
    warmup = time.perf_counter() - started
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    arrays = len(x) / (time.perf_counter() - started)
    sequence = training.PatchSequence(x, y, batch, experiment.augmentation, experiment.patch.window_width, seed=0, workers=4)
    model.fit(sequence, epochs=1, verbose=0)  # warm-up of the generator path
    started = time.perf_counter()
    model.fit(sequence, epochs=1, verbose=0)
    pipeline = len(x) / (time.perf_counter() - started)
    run = {"phases": phases, "warmup_s": round(warmup, 2), "arrays_images_per_s": round(arrays, 1),
           "pipeline_images_per_s": round(pipeline, 1), "ratio": round(pipeline / arrays, 3),
           "step_ms": round(1000 * batch / arrays, 2)}
    results["runs"].append(run)
    print(json.dumps(run), flush=True)
path = os.path.join(os.environ["OUT_DIR"], "gpu_train.json")
with open(path, "w") as handle:
    json.dump(results, handle, indent=2)
print("wrote", path)
PYEOF
