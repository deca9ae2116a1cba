"""Fine-tuning the Flux transformer with torchao float8 training (training/train_fp8.py wires these modules): the
data (data), the float8 conversion (float8), LoRA adapters (lora) and the loop (loop)."""

import torch

WEIGHT_DTYPE = torch.bfloat16  # the frozen weights; trained weights are kept in fp32 and computed under bf16 autocast
