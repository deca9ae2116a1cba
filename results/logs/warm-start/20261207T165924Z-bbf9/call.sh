# session 14, call 1. H200 -> issue 19 ladder steps 1-6; H100 -> one warm-start campaign: --recipe fastest cold, warm, warm,
# then the same flags without --compile_vae cold, warm. Empty inductor and Triton caches per process; /tmp cache files removed first.
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/gpu.txt
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
mkdir -p $OUT/logs
if echo "$GPU" | grep -q H200; then
  timeout 560 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [1-6] ' --csv $OUT/ladder.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
  echo "rc=$?" >> $OUT/sweep.log; tail -30 $OUT/sweep.log
else
  rm -f /tmp/cc.bin /tmp/cc-novae.bin
  export BENCH_CAMPAIGN=$(python3 -c "from utils.campaign import new_campaign_id; print(new_campaign_id())")
  echo "campaign $BENCH_CAMPAIGN" | tee $OUT/all.log
  NOVAE="--quantization fp8dqrow --fuse_attn_projections --regional_compile --persistent_reductions_up_to 16384 --gelu_fp8_one_pass --cuda_graph --attention_backend fa3_fp8"
  one() { name=$1; t=$2; F=$3; shift 3; C=$(mktemp -d); echo "=== $name" >> $OUT/all.log
    env TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/t timeout $t python3 inference/benchmark_image.py "$@" --ckpt_id black-forest-labs/FLUX.1-dev --weights random --warmup 1 --runs 3 --compile_cache $F --csv $OUT/ws.csv >> $OUT/all.log 2>&1
    echo "$name rc=$?" | tee -a $OUT/all.log; grep -E "compile_s|median" $OUT/all.log | tail -2 | cut -c1-300; }
  one cold 200 /tmp/cc.bin --recipe fastest
  one warm1 130 /tmp/cc.bin --recipe fastest
  one warm2 130 /tmp/cc.bin --recipe fastest
  one novae-cold 160 /tmp/cc-novae.bin $NOVAE
  one novae-warm 120 /tmp/cc-novae.bin $NOVAE
  python3 -c "
import csv,sys; rows=list(csv.DictReader(open('$OUT/ws.csv')))
for r in rows: print(r.get('compile_s'), r['time_median_s'], r['compile_start'], r['compile_vae'], r.get('status'), r['error'][:80])"
fi
