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
# slow step cannot eat the others' time. Usage: bash bench/gpu_checks.sh [memory] [memory-long] [train] [rag]
# (default all; memory-long -> bench/results/gpu_checks_long.json)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
steps=${*:-memory memory-long train rag}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU here')" || exit 2
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(), 'torch', torch.__version__)"
rc=0
for step in $steps; do
    echo "== $step"
    case $step in
        memory) timeout "${MEMORY_S:-240}" "$PY" bench/gpu_checks.py --seq 1024 || rc=1 ;;
        # long rows: QLoRA's fp32 stream sends sdpa with grouped KV heads to the math kernel (s x s softmax
        # and its backward transient in the estimate); 4,096 tokens make those terms most of the peak
        memory-long) timeout "${MEMORY_S:-240}" "$PY" bench/gpu_checks.py --seq 4096 --batch 1 --only qwen \
                         --methods lora,qlora --name gpu_checks_long || rc=1 ;;
        train)
            # a 1B-class model (hidden 2048, 16 layers) and 1,024-token rows, so steps are compute-bound rather
            # than launch-bound (hidden 1024 x 8 layers ran ~70 ms a step and repeats differed 2.6x), 5 repeats
            timeout "${TRAIN_S:-420}" "$PY" bench/train_throughput.py --device cuda --hidden "${HIDDEN:-2048}" \
                --layers "${LAYERS:-16}" --max-len 1024 --examples "${EXAMPLES:-480}" --batch 16 --pretrain-steps 200 \
                --repeats "${REPEATS:-5}" --name train_throughput_gpu \
                --contenders pad-random,pad-grouped,tunepath,tp-packing,tp-varlen,trl-bfd,trl-padfree || rc=1 ;;
        rag) timeout "${RAG_S:-240}" "$PY" bench/rag_tune_sweep.py --grid "${RAG_GRID:-full}" --bf16 --budget-s "${RAG_BUDGET_S:-170}" \
                || rc=1 ;;
        *) echo "unknown step $step (memory, memory-long, train, rag)"; rc=2 ;;
    esac
done
"$PY" bench/make_docs.py || rc=1
exit $rc
