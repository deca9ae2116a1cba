# session 12: where a warm start of --recipe fastest spends its time. Cold run writes the cache file; then warm runs,
# each its own process with empty inductor and Triton caches: as is, with one compile thread, and under cProfile.
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/gpu.txt
export BENCH_CAMPAIGN=$(python3 -c "from utils.campaign import new_campaign_id; print(new_campaign_id())"); F=/tmp/cc.bin
echo "campaign $BENCH_CAMPAIGN" | tee $OUT/campaign.txt
one() { name=$1; shift; C=$(mktemp -d); env TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/t "$@" inference/benchmark_image.py --recipe fastest --ckpt_id black-forest-labs/FLUX.1-dev --weights random --warmup 1 --runs 3 --compile_cache $F --csv $OUT/${CSV:-ws}.csv > $OUT/ws-$name.log 2>&1; echo "$name rc=$?"; tail -2 $OUT/ws-$name.log | cut -c1-400; }
one cold timeout 200 python3
one warm timeout 120 python3
one warm-1thread TORCHINDUCTOR_COMPILE_THREADS=1 timeout 120 python3
CSV=profiled one warm-cprofile timeout 150 python3 -m cProfile -o $OUT/warm.prof
python3 - <<'PY' > $OUT/warm-prof.txt 2>&1
import pstats, os
s = pstats.Stats(os.environ["OUT"] + "/warm.prof"); s.sort_stats("cumulative").print_stats(120)
PY
head -c 3000 $OUT/warm-prof.txt
