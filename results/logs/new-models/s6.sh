# session 4, call 2: which row counts the fp8/int8 GEMMs accept (Qwen-Image failures); issue 23's Wan2.2-TI2V-5B table
nvidia-smi --query-gpu=name,memory.total --format=csv
timeout 60 python3 outputs/gpu19/qwen_probe.py $OUT/qwen_probe.json 2>&1 | grep -v Warn | tail -40
timeout 530 python3 inference/sweep.py --grid inference/grids/wan22-ti2v-5b.json --csv $OUT/wan22-ti2v-5b.csv --log_dir $OUT/logs > /tmp/sweep.log 2>&1
tail -3 /tmp/sweep.log
python3 -c "
import pandas as pd; d=pd.read_csv('$OUT/wan22-ti2v-5b.csv'); print(d[['status','gpu','campaign','time_median_s','compile_s','load_s','model_memory_GiB','inference_memory_GiB','psnr_db','error']].to_string())"
