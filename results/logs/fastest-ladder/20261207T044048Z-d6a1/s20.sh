# issue 19: does a triton_op (instead of an opaque custom_op) for the one-pass GELU kernel shorten the warm start?
# --recipe fastest's flags without --compile_vae, cold then warm from --compile_cache, current code and then
# triton_op.patch applied to a copy of the tree, one campaign, each run its own process with empty caches.
nvidia-smi --query-gpu=name,memory.total --format=csv
mkdir -p /tmp/logs
export BENCH_CAMPAIGN=$(python3 -c "from utils.campaign import _own_campaign; print(_own_campaign())")
FAST="--ckpt_id black-forest-labs/FLUX.1-dev --weights random --warmup 2 --runs 3 --regional_compile --compile_mode default --quantization fp8dqrow --fuse_attn_projections --persistent_reductions_up_to 16384 --gelu_fp8_one_pass --cuda_graph --attention_backend fa3_fp8"
rm -rf /tmp/variant && mkdir /tmp/variant && cp -r inference utils training /tmp/variant/ && (cd /tmp/variant && patch -p1 < $OLDPWD/outputs/gpu19/triton_op.patch) || exit 1
for tree in $PWD /tmp/variant; do
  name=$([ $tree = $PWD ] && echo custom_op || echo triton_op)
  for start in cold warm; do
    C=$(mktemp -d); (cd $tree && PYTHONPATH=/tmp/site:$tree TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/triton timeout 110 python3 inference/benchmark_image.py $FAST --compile_cache /tmp/cc-$name.bin --csv $OUT/ab-$name.csv) > /tmp/logs/$name-$start.log 2>&1; echo "$name $start rc $?"
  done
done
tar czf $OUT/logs.tgz -C /tmp logs 2>/dev/null
python3 -c "
import pandas as pd
for n in ['custom_op', 'triton_op']:
  d=pd.read_csv(f'$OUT/ab-{n}.csv'); print(n); print(d[['status','compile_start','time_median_s','compile_s','compile_trace_s','compile_backend_s','compile_kernel_wait_s','psnr_db','error']].to_string())"
