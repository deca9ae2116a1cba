#!/usr/bin/env bash
# FP8 training rows for random-weight FLUX.1-dev: LoRA rank 4 (gradient checkpointing, compiled) at 1024x1024 and at
# 768x512, bf16 vs float8 tensorwise vs rowwise; and a full fine-tune of a shallower copy (4 double + 8 single blocks:
# all 19+38 blocks need ~190 GB for fp32 weights, gradients and AdamW states). Attention: flash on CUDA (the script's
# default since torch 2.11's cuDNN attention crashed in the backward); the first rows ran before that default.
# Usage: bash results/commands/train-flux-dev.sh OUT_CSV [LOG_DIR]   (ONLY=regex runs a subset; loss plots go to LOG_DIR)
set -u
source "$(dirname "$0")/lib.sh"
csv=${1:?usage: train-flux-dev.sh OUT_CSV [LOG_DIR]}
logs=${2:-$(dirname "$csv")}
lora="--rank 4 --gradient_checkpointing --compile --max_steps 20 --warmup_steps 5"
configs=(
  "lora-1024-bf16-vs-tensorwise|$lora --resolution 1024 --compare --fp8 tensorwise --no_save --plot $logs/loss-lora-1024-tensorwise.png"
  "lora-1024-rowwise|$lora --resolution 1024 --fp8 rowwise --no_save --plot $logs/loss-lora-1024-rowwise.png"
  "lora-768x512-bf16-vs-tensorwise|$lora --resolution 768x512 --compare --fp8 tensorwise --no_save --plot $logs/loss-lora-768x512-tensorwise.png"
  "lora-768x512-rowwise-reload|$lora --resolution 768x512 --fp8 rowwise --check_reload --output_dir /tmp/lora-768x512"
  "lora-1024-tensorwise|$lora --resolution 1024 --fp8 tensorwise --no_save"
  "lora-1024-bf16-eager|--rank 4 --gradient_checkpointing --max_steps 20 --warmup_steps 5 --resolution 1024 --fp8 off --no_save"
  "lora-768x512-nockpt-bf16-vs-rowwise|--rank 4 --compile --max_steps 20 --warmup_steps 5 --resolution 768x512 --compare --fp8 rowwise --no_save --plot $logs/loss-lora-768x512-nockpt-rowwise.png"
  "lora-1024-flash-bf16-vs-tensorwise|$lora --resolution 1024 --attention_backend _native_flash --compare --fp8 tensorwise --no_save --plot $logs/loss-lora-1024-flash-tensorwise.png"
  "lora-1024-flash-rowwise|$lora --resolution 1024 --attention_backend _native_flash --fp8 rowwise --no_save"
  "lora-1024-profile-bf16-vs-rowwise|$lora --resolution 1024 --compare --fp8 rowwise --max_steps 8 --warmup_steps 3 --no_save --profile $logs/train-profile-lora-1024.md"
  "full-4+8-1024-bf16-vs-rowwise|--full_finetune --num_layers 4 --num_single_layers 8 --gradient_checkpointing --compile --max_steps 20 --warmup_steps 5 --resolution 1024 --compare --fp8 rowwise --no_save --plot $logs/loss-full-1024-rowwise.png"
)
run_configs training/train_fp8.py "$csv" "$logs" "${CONFIG_TIMEOUT_S:-420}" "--ckpt_id black-forest-labs/FLUX.1-dev --weights random" "${configs[@]}"
