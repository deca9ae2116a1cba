# session 4, call 1: on an H200, issue 19's ladder steps 1-6; on an H100, issue 23's Qwen-Image table
nvidia-smi --query-gpu=name,memory.total --format=csv
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
  timeout 555 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [1-6] ' --csv $OUT/ladder.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
  CSV=$OUT/ladder.csv
else
  timeout 555 python3 inference/sweep.py --grid inference/grids/qwen-image.json --csv $OUT/qwen-image.csv --log_dir $OUT/logs > $OUT/sweep.log 2>&1
  CSV=$OUT/qwen-image.csv
fi
tail -3 $OUT/sweep.log
python3 -c "
import pandas as pd; d=pd.read_csv('$CSV'); print(d[['status','gpu','campaign','time_median_s','time_min_s','time_max_s','compile_s','model_memory_GiB','inference_memory_GiB','psnr_db','error']].to_string())"
