# issue 19 on an H200 (plain call): ladder steps 1, 5, 6 (bf16 eager, fastest-lossless, fastest) as one campaign;
# then, in the same campaign, step 6 with small non-INNER reductions made persistent (probe); then inductor's code
# and a profile of step 6 at 2 steps. On an H100 the same (kernel work; the H200 target needs an H200 row).
nvidia-smi --query-gpu=name,memory.total --format=csv
mkdir -p /tmp/logs /tmp/dump
timeout 330 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [156] ' --csv $OUT/ladder.csv --log_dir /tmp/logs > /tmp/logs/sweep.log 2>&1
tail -2 /tmp/logs/sweep.log
CAMP=$(python3 -c "import pandas as pd; print(pd.read_csv('$OUT/ladder.csv').campaign.iloc[0])")
STEP6="--ckpt_id black-forest-labs/FLUX.1-dev --weights random --warmup 2 --runs 3 --recipe fastest"
C=$(mktemp -d); BENCH_CAMPAIGN=$CAMP TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/triton timeout 150 python3 outputs/gpu19/variant_persist.py $STEP6 --csv $OUT/probe.csv > /tmp/logs/variant.log 2>&1
echo "variant rc $?"; grep -a "probe:\|median" /tmp/logs/variant.log | head -20
export TORCHINDUCTOR_CACHE_DIR=/tmp/ind TRITON_CACHE_DIR=/tmp/ind/triton
BENCH_CAMPAIGN=$CAMP timeout 110 python3 inference/benchmark_image.py --ckpt_id black-forest-labs/FLUX.1-dev --weights random --recipe fastest \
  --num_inference_steps 2 --warmup 1 --runs 1 --csv /tmp/dump/dump.csv --profile /tmp/dump/profile.md > /tmp/dump/dump.log 2>&1
echo "dump rc $?"
find /tmp/ind -name "*.py" -size +2k | sed 's#^/##' > /tmp/dump/files.txt; wc -l < /tmp/dump/files.txt
tar czf $OUT/logs.tgz -C / tmp/logs tmp/dump $(cat /tmp/dump/files.txt) 2>/dev/null
python3 -c "
import pandas as pd
for f in ['$OUT/ladder.csv', '$OUT/probe.csv']:
    d=pd.read_csv(f); print(d[['status','campaign','time_median_s','time_min_s','time_max_s','compile_s','compile_trace_s','compile_backend_s','compile_kernel_wait_s','inference_memory_GiB','psnr_db','error']].to_string())"
ls -la $OUT
