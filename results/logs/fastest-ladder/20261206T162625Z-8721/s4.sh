# session 3, call 4: the hand-written q/k kernel check; ladder steps 1 and 6 (step 6 now uses the kernel)
nvidia-smi --query-gpu=name,memory.total --format=csv
timeout 80 python3 outputs/gpu19/probe3.py $OUT/probe3.json > $OUT/probe3.log 2>&1; grep -v Warn $OUT/probe3.log | tail -32
timeout 200 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [16] ' --csv $OUT/ladder.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1; tail -2 $OUT/sweep.log
python3 -c "
import pandas as pd; d=pd.read_csv('$OUT/ladder.csv'); print(d[['step','status','gpu','campaign','time_median_s','time_min_s','time_max_s','compile_s','inference_memory_GiB','psnr_db','error']].to_string())"
