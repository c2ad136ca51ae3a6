#!/usr/bin/env bash
# The one prepared script for a lent GPU (never part of CI): every check tunepath cannot run on a CPU.
#   1. the training memory estimate against torch.cuda.max_memory_allocated on real architectures at
#      random init - full, LoRA and QLoRA (bitsandbytes NF4), with and without gradient checkpointing
#      -> bench/results/gpu_checks.json
#   2. packing through flash-attention's varlen kernel against length-grouped padding and TRL
#      -> bench/results/train_throughput.json (device cuda)
# Needs torch with CUDA plus the train and bench extras; bitsandbytes for the QLoRA rows and flash-attn for
# step 2 (each step says what it skips without them). Usage: bash bench/gpu_checks.sh [--quick]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
quick=${1:-}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU here')" || exit 2
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name())"
rc=0
if [ "$quick" = "--quick" ]; then
    "$PY" bench/gpu_checks.py --only qwen --seq 512 || rc=1
else
    "$PY" bench/gpu_checks.py || rc=1
fi
if "$PY" -c "import flash_attn" 2>/dev/null; then
    "$PY" bench/train_throughput.py --device cuda --attn flash_attention_2 --hidden 1024 --layers 8 \
        --examples 480 --batch 16 || rc=1
else
    echo "flash-attn not installed: skipped the varlen packing comparison (pip install flash-attn)"
fi
"$PY" bench/make_docs.py || rc=1
exit $rc
