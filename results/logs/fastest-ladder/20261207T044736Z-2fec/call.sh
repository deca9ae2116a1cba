# The command of this call (one H100, 2026-12-07, sha 9a97fee), after the usual wheel install line. Its three rows
# are in results/flux-fastest-ladder.csv as steps 8, 7 and 9 of inference/grids/flux-fastest-ladder.json (the
# step, lever and base columns were filled in when they were merged: the runs were started directly, not by the sweep).
export BENCH_CAMPAIGN=$(python3 -c "from utils.campaign import _own_campaign; print(_own_campaign())")
F="--ckpt_id black-forest-labs/FLUX.1-dev --weights random --batch_size 4 --csv $OUT/bs4.csv"
for cfg in "--warmup 1 --runs 2" "--recipe fastest --warmup 2 --runs 2" "--recipe fastest-lossless --warmup 2 --runs 2"; do
  C=$(mktemp -d); TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/t timeout 170 python3 inference/benchmark_image.py $F $cfg > $OUT/bs4-$(echo $cfg | tr -d ' -').log 2>&1
done
