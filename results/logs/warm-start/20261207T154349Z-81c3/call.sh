# session 13: how much of a warm start (--recipe fastest, --compile_cache loaded) is Python compiling source to bytecode
# (this machine's site-packages carry no .pyc): cold, warm, then warm again with bytecode caches written beforehand
# to a writable PYTHONPYCACHEPREFIX. Each run in empty inductor and Triton cache dirs.
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > $OUT/gpu.txt
export BENCH_CAMPAIGN=$(python3 -c "from utils.campaign import new_campaign_id; print(new_campaign_id())"); F=/tmp/cc.bin
echo "campaign $BENCH_CAMPAIGN" >> $OUT/all.log
one() { name=$1; shift; C=$(mktemp -d); echo "=== $name" >> $OUT/all.log; env TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/t "$@" python3 inference/benchmark_image.py --recipe fastest --ckpt_id black-forest-labs/FLUX.1-dev --weights random --warmup 1 --runs 3 --compile_cache $F --csv $OUT/ws.csv >> $OUT/all.log 2>&1; echo "$name rc=$?" | tee -a $OUT/all.log; }
one cold timeout 150
one warm timeout 80
export PYTHONPYCACHEPREFIX=/tmp/pyc
s=$(date +%s); timeout 60 python3 -m compileall -q -j 16 /tmp/site $(python3 -c "import torch,os;print(os.path.dirname(os.path.dirname(torch.__file__)))") > /dev/null 2>&1; echo "compileall rc=$? $(( $(date +%s) - s )) s" | tee -a $OUT/all.log
one warm-pyc timeout 80
python3 - <<'PY' | tee -a $OUT/all.log
import csv, os
for r in csv.DictReader(open(os.environ["OUT"] + "/ws.csv")):
    print(r["compile_cache"], r["compile_s"], r["compile_trace_s"], r["compile_backend_s"], r["time_median_s"], r["status"], r["host"], r["timestamp"])
PY
