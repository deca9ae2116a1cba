# session 3, call 2 (same warm machine as call 1): ladder steps 2-4 in call 1's campaign; compile cache cold then warm for --recipe fastest; step 7
export BENCH_CAMPAIGN=20261206T155722Z-b77a
nvidia-smi --query-gpu=name,memory.total --format=csv
timeout 220 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [234] ' --csv $OUT/ladder.csv --log_dir $OUT/logs > $OUT/sweep2.log 2>&1; tail -2 $OUT/sweep2.log
F="--ckpt_id black-forest-labs/FLUX.1-dev --weights random --recipe fastest --warmup 2 --runs 3 --compile_cache /tmp/cc/fastest.bin --csv $OUT/compile-cache.csv"
mkdir -p /tmp/cc
for state in cold warm; do
  export TORCHINDUCTOR_CACHE_DIR=/tmp/ind-$state TRITON_CACHE_DIR=/tmp/tri-$state
  [ $SECONDS -lt 420 ] && timeout $((500-SECONDS)) python3 inference/benchmark_image.py $F > $OUT/cc-$state.log 2>&1; tail -2 $OUT/cc-$state.log | cut -c1-300
done
ls -la /tmp/cc
python3 -c "
import pandas as pd
for f in ['ladder','compile-cache']:
    try: d=pd.read_csv('$OUT/'+f+'.csv')
    except Exception as e: print(f, e); continue
    print(f); print(d[[c for c in ['ladder_step','status','gpu','time_median_s','time_min_s','time_max_s','compile_s','compile_cache','inference_memory_GiB','psnr_db','error'] if c in d]].to_string())"
