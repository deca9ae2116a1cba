# issue 19, second call: step 7 (fastest at batch 4); then cold and warm (--compile_cache) starts of the fastest
# recipe with and without the VAE decoder's compile, one campaign, each run its own process with empty caches.
nvidia-smi --query-gpu=name,memory.total --format=csv
mkdir -p /tmp/logs
timeout 230 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step 7 ' --csv $OUT/batch4.csv --log_dir /tmp/logs > /tmp/logs/sweep.log 2>&1
tail -2 /tmp/logs/sweep.log
export BENCH_CAMPAIGN=$(python3 -c "from utils.campaign import _own_campaign; print(_own_campaign())")
FAST="--ckpt_id black-forest-labs/FLUX.1-dev --weights random --warmup 2 --runs 3 --regional_compile --compile_mode default --quantization fp8dqrow --fuse_attn_projections --persistent_reductions_up_to 16384 --gelu_fp8_one_pass --cuda_graph --attention_backend fa3_fp8"
for variant in "--compile_vae" ""; do
  for start in cold warm; do
    C=$(mktemp -d); TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/triton timeout 120 python3 inference/benchmark_image.py $FAST $variant --compile_cache /tmp/cc${variant:+-vae}.bin --csv $OUT/compile.csv > /tmp/logs/fast${variant:+-vae}-$start.log 2>&1; echo "$variant $start rc $?"
  done
done
tar czf $OUT/logs.tgz -C /tmp logs 2>/dev/null
python3 -c "
import pandas as pd
d=pd.read_csv('$OUT/batch4.csv'); print(d[['status','campaign','batch_size','time_median_s','compile_s','inference_memory_GiB','psnr_db','error']].to_string())
d=pd.read_csv('$OUT/compile.csv'); print(d[['status','campaign','compile_vae','compile_start','time_median_s','time_min_s','time_max_s','compile_s','compile_trace_s','compile_backend_s','compile_kernel_wait_s','error']].to_string())"
ls -la $OUT
