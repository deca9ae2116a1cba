# issue 19 (any GPU, plain call): ladder steps 1, 5, 6 (bf16 eager, fastest-lossless, fastest with q/k de-interleaved
# for RoPE in halves) as one campaign; then in the same campaign step 6 with the old interleaved layout (A/B); then the
# q/k kernel probe.
nvidia-smi --query-gpu=name,memory.total --format=csv
mkdir -p /tmp/logs
timeout 330 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [156] ' --csv $OUT/ladder.csv --log_dir /tmp/logs > /tmp/logs/sweep.log 2>&1
tail -2 /tmp/logs/sweep.log
CAMP=$(python3 -c "import pandas as pd; print(pd.read_csv('$OUT/ladder.csv').campaign.iloc[0])")
STEP6="--ckpt_id black-forest-labs/FLUX.1-dev --weights random --warmup 2 --runs 3 --recipe fastest"
C=$(mktemp -d); BENCH_CAMPAIGN=$CAMP TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/triton timeout 150 python3 outputs/gpu19/variant_layout.py $STEP6 --csv $OUT/probe.csv > /tmp/logs/variant.log 2>&1
echo "variant rc $?"; grep -a "probe:\|median" /tmp/logs/variant.log | head -5
timeout 80 python3 outputs/gpu19/rope_probe.py $OUT/rope_probe.json > /tmp/logs/rope_probe.log 2>&1; echo "probe rc $?"; tail -25 /tmp/logs/rope_probe.log
tar czf $OUT/logs.tgz -C /tmp logs 2>/dev/null
python3 -c "
import pandas as pd
for f in ['$OUT/ladder.csv', '$OUT/probe.csv']:
    d=pd.read_csv(f); print(d[['status','campaign','time_median_s','time_min_s','time_max_s','compile_s','compile_trace_s','compile_backend_s','inference_memory_GiB','psnr_db','error']].to_string())"
ls -la $OUT
