# session 12, call 1. H200 -> issue 19 ladder steps 1-6 (batch 1, one call); H100 -> n2.sh (warm-start attribution).
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/gpu.txt
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
mkdir -p $OUT/logs
if echo "$GPU" | grep -q H200; then
  timeout 450 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [1-6] ' --csv $OUT/ladder.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
  echo "rc=$?" >> $OUT/sweep.log; tail -30 $OUT/sweep.log
else
  bash outputs/gpu19/n2.sh
fi
