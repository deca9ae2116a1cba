# A short last call (about 5 minutes): H200 -> ladder steps 1 and 6 (bf16 eager, --recipe fastest) as one campaign;
# H100 -> the FLUX VAE decoder as now (torch.compile of vae.decode) against eager and regional compile.
nvidia-smi --query-gpu=name,memory.total --format=csv
mkdir -p /tmp/logs
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
  timeout 280 python3 inference/sweep.py --grid inference/grids/flux-fastest-ladder.json --only 'ladder_step [16] ' --csv $OUT/ladder.csv --log_dir /tmp/logs > /tmp/logs/sweep.log 2>&1
  tail -2 /tmp/logs/sweep.log
  python3 -c "
import pandas as pd
d=pd.read_csv('$OUT/ladder.csv'); print(d[['status','campaign','time_median_s','time_min_s','time_max_s','compile_s','inference_memory_GiB','psnr_db','error']].to_string())"
else
  VTIMEOUT=50 VARIANTS='eager full regional' bash outputs/gpu19/s18.sh
  cat $OUT/vae_probe.jsonl
fi
tar czf $OUT/logs.tgz -C /tmp logs 2>/dev/null
