# The next call for issue 19 (about 9 minutes), on whatever GPU comes:
#  H200: the ladder steps 1, 5, 6 and the q/k probe (s16.sh), then the cuDNN sdpa_fp8 probe.
#  H100: the triton_op warm-start A/B (s20.sh), then the cuDNN sdpa_fp8 probe.
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
  bash outputs/gpu19/s16.sh
else
  bash outputs/gpu19/s20.sh
fi
timeout 90 python3 outputs/gpu19/cudnn_fp8_probe.py $OUT/cudnn_fp8_probe.jsonl > $OUT/cudnn_fp8_probe.log 2>&1; echo "cudnn probe rc $?"
cat $OUT/cudnn_fp8_probe.log | tail -20
