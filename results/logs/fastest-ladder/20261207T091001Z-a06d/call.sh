# session 11, call 3 (same machine). The --list line failed (sweep.py wants --csv with it) and did nothing else.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 BENCH_GIT_SHA=f76666a || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/gpu.txt
python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --list 2>&1 | tail -12; mkdir -p $OUT/logs
timeout 540 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [789]' --csv $OUT/ladder789.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
echo "rc=$?" >> $OUT/sweep.log; tail -5 $OUT/sweep.log
