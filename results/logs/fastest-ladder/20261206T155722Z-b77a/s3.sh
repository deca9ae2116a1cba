# session 3, call 1: attention-cast probe; ladder steps 1,5,6 (6 = q/k at the norm bound); step 6 with per-head q/k amax (old); step 6 under --profile
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv
timeout 75 python3 outputs/gpu19/attn_cast.py $OUT/attn_cast.json > $OUT/attn_cast.log 2>&1; tail -16 $OUT/attn_cast.log
timeout 330 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [156] ' --csv $OUT/ladder.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
tail -5 $OUT/sweep.log
F="--ckpt_id black-forest-labs/FLUX.1-dev --weights random --recipe fastest --warmup 2"
export TORCHINDUCTOR_CACHE_DIR=/tmp/ind-v TRITON_CACHE_DIR=/tmp/tri-v
timeout $((585-SECONDS)) python3 outputs/gpu19/variant.py $F --runs 3 --csv $OUT/variant.csv > $OUT/variant.log 2>&1; tail -3 $OUT/variant.log
export TORCHINDUCTOR_CACHE_DIR=/tmp/ind-p TRITON_CACHE_DIR=/tmp/tri-p
[ $SECONDS -lt 470 ] && timeout $((590-SECONDS)) python3 inference/benchmark_image.py $F --runs 1 --profile $OUT/profile.md --csv $OUT/profile.csv > $OUT/profile.log 2>&1; tail -3 $OUT/profile.log
python3 -c "
import pandas as pd
for f in ['ladder','variant','profile']:
    try: d=pd.read_csv('$OUT/'+f+'.csv')
    except Exception as e: print(f, e); continue
    print(f); print(d[[c for c in ['ladder_step','status','gpu','time_median_s','time_min_s','time_max_s','compile_s','inference_memory_GiB','psnr_db','error'] if c in d]].to_string())"
head -60 $OUT/profile.md
