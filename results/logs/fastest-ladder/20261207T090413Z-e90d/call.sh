# session 11, call 2 (the run tool's command, in the repository root; the same H100 machine as call 1)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 BENCH_GIT_SHA=f76666a || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/gpu.txt; mkdir -p $OUT/logs
timeout 575 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [1-6] ' --csv $OUT/ladder.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
echo "rc=$?" >> $OUT/sweep.log; tail -5 $OUT/sweep.log
