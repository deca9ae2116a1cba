# session 12. H200 -> issue 19 ladder steps 1-6; H100 -> issue 23 Wan2.2-T2V-A14B at full size, bf16 eager + fp8dqrow compiled (2 of 40 steps), an H100 campaign.
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/gpu.txt
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
mkdir -p $OUT/logs
if echo "$GPU" | grep -q H200; then
  timeout 560 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [1-6] ' --csv $OUT/ladder.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
else
  timeout 560 python3 inference/sweep.py --grid inference/grids/wan22-a14b.json --only '(--dtype bf16$|--dtype fp8dqrow --regional_compile --compile_mode default$)' --csv $OUT/a14b.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
fi
echo "rc=$?" >> $OUT/sweep.log
tail -30 $OUT/sweep.log
