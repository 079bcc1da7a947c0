#!/usr/bin/env bash
# One short check of ecgscope's GPU path (under 8 minutes on one GPU); run from the repository root:
#
#     bash benchmarks/gpu_check.sh            # PYTHON=... to choose the interpreter
#
# 1. the GPU-relevant tests (training, resume, determinism, fine-tuning, the motion GAN, NT-Xent, contracts),
#    which run on the GPU when there is one;
# 2. a tiny `ecgscope demo` on the GPU (study A through the CLI, study B at test size);
# 3. resume identity: a run killed mid-epoch and resumed against an uninterrupted one (benchmarks/resume_identity.py);
# 4. throughput: training ECGs/s of net1d_small and net1d_ecgfounder and the data loader's ECGs/s
#    (benchmarks/loader_benchmark.py).
#
# It needs a Python with a CUDA build of torch and ecgscope's dependencies; it installs nothing from the
# network. Each step prints its wall time; the script stops at the first failure.
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
cd "$(dirname "$0")/.."

step() { echo; echo "=== $1 ($(date +%T))"; SECONDS=0; }
done_step() { echo "--- ${SECONDS} s"; }

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi not found"
"$PYTHON" - <<'EOF'
import importlib, sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch: this check is for a GPU machine")
missing = [m for m in ("lightning", "wfdb", "h5py", "pyarrow", "lifelines", "sksurv", "pydicom", "typer", "pytest")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing packages: {', '.join(missing)} (install ecgscope's dependencies into this Python first)")
print(torch.cuda.get_device_name(0), f"bf16: {torch.cuda.is_bf16_supported()}")
EOF
"$PYTHON" -c "import ecgscope" 2>/dev/null || "$PYTHON" -m pip install --no-deps --no-build-isolation -q -e .
done_step

step "GPU-relevant tests"
"$PYTHON" -m pytest -q -p no:cacheprovider -x tests/test_train.py tests/test_training_run.py tests/test_motion.py \
    tests/test_foundation.py tests/test_contract.py
done_step

step "tiny demo on the GPU: study A through the CLI, study B (motion GAN, pretraining) at test size"
"$PYTHON" -m ecgscope.cli demo --study a --out "$OUT/demo" --n 400 --epochs 2
"$PYTHON" - "$OUT/echo" <<'EOF'
import sys
from ecgscope.studies.echo_study import run_echo_study
print(run_echo_study(sys.argv[1], n_dev=200, n_external=150, n_code15=300, n_echonext=300, pretrain_epochs=2,
                     motion_epochs=2, encoder_model="net1d_small", folds=3, n_boot=50, progress=False))
EOF
done_step

step "resume identity"
"$PYTHON" benchmarks/resume_identity.py --model net1d_small --epochs 3
done_step

step "throughput"
"$PYTHON" benchmarks/loader_benchmark.py --n 1024 --steps 30 --workers 0,2,4,8 --out "$OUT/loader_throughput.csv"
done_step
echo; echo "gpu_check passed; outputs in $OUT"
