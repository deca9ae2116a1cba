# session 11, call 1 (run with kind nvidia-h200; an H100 came). H200 -> issue 19 ladder steps 1-6; H100 -> issue 23 Wan2.2-TI2V-5B grid again at 5 steps, with the fp8 activation-scale floor (C3). Preceded by the install line of the other calls here.
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/gpu.txt
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
mkdir -p $OUT/logs
if echo "$GPU" | grep -q H200; then
  timeout 560 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [1-6] ' --csv $OUT/ladder.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
else
  timeout 570 python3 inference/sweep.py --grid inference/grids/wan22-ti2v-5b.json --csv $OUT/wan.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
fi
echo "rc=$?" >> $OUT/sweep.log
tail -30 $OUT/sweep.log
