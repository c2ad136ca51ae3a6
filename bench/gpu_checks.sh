#!/usr/bin/env bash
# The one prepared script for a lent GPU (never part of CI): every check tunepath cannot run on a CPU.
#   memory  the training memory estimate against torch.cuda.max_memory_allocated on real architectures at
#           random init - full, LoRA and QLoRA (bitsandbytes NF4), with and without gradient checkpointing
#           -> bench/results/gpu_checks.json
#   train   packing through a varlen kernel (tunepath's `varlen` attention: PyTorch's fused kernel; and
#           flash-attn's when installed) against length-grouped padding and TRL, on one GPU, bf16
#           -> bench/results/train_throughput_gpu.json
#   rag     `rag tune` settings chosen on SciFact train (held-out fifth of the claims), seconds per setting
#           -> bench/results/rag_tune_sweep.json (bench/rag_tune.py then reports the chosen one on test)
# Needs torch with CUDA plus the train, rag and bench extras; bitsandbytes for the QLoRA rows (skipped
# without it); ../shared/data (sft/, scifact/) for train and rag. Each step is bounded by a timeout so one
# slow step cannot eat the others' time. Usage: bash bench/gpu_checks.sh [memory] [train] [rag] (default all)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
steps=${*:-memory train rag}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU here')" || exit 2
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(), 'torch', torch.__version__)"
rc=0
for step in $steps; do
    echo "== $step"
    case $step in
        memory) timeout "${MEMORY_S:-240}" "$PY" bench/gpu_checks.py --seq 1024 || rc=1 ;;
        train)
            timeout "${TRAIN_S:-330}" "$PY" bench/train_throughput.py --device cuda --hidden 1024 --layers 8 \
                --examples "${EXAMPLES:-480}" --batch 16 --pretrain-steps 200 --repeats "${REPEATS:-2}" --name train_throughput_gpu \
                --contenders pad-random,pad-grouped,tunepath,tp-packing,tp-varlen,trl-bfd,trl-padfree || rc=1 ;;
        rag) timeout "${RAG_S:-240}" "$PY" bench/rag_tune_sweep.py --grid "${RAG_GRID:-full}" --bf16 --budget-s "${RAG_BUDGET_S:-170}" \
                || rc=1 ;;
        *) echo "unknown step $step (memory, train, rag)"; rc=2 ;;
    esac
done
"$PY" bench/make_docs.py || rc=1
exit $rc
