# session 4, call 3: issue 23's Qwen-Image table again (int8dq/fp8dqrow with the text stream weight-only); the fp8
# block probe if fp8dqrow still fails; Wan2.2-TI2V-5B bf16 eager + fp8dqrow compiled (a campaign of its own)
nvidia-smi --query-gpu=name,memory.total --format=csv
START=$SECONDS
mkdir -p /tmp/logs/qwen /tmp/logs/wan
timeout 330 python3 inference/sweep.py --grid inference/grids/qwen-image.json --csv $OUT/qwen-image.csv --log_dir /tmp/logs/qwen > /tmp/logs/qwen-sweep.log 2>&1
tail -1 /tmp/logs/qwen-sweep.log
python3 -c "
import pandas as pd; d=pd.read_csv('$OUT/qwen-image.csv'); print(d[['status','campaign','time_median_s','compile_s','model_memory_GiB','inference_memory_GiB','psnr_db','error']].to_string())"
if grep -q "CUBLAS" $OUT/qwen-image.csv; then timeout 120 python3 outputs/gpu19/qwen_block.py cuda 2>&1 | grep "text stream" | tee /tmp/logs/qwen_block.txt; fi
tar czf $OUT/logs-qwen.tar.gz -C /tmp logs
LEFT=$((575 - (SECONDS - START)))
echo "wan gets $LEFT s"
[ $LEFT -gt 260 ] || exit 0
timeout $LEFT python3 inference/sweep.py --grid inference/grids/wan22-ti2v-5b.json --csv $OUT/wan22-ti2v-5b-part2.csv --log_dir /tmp/logs/wan --only='--dtype (bf16$|fp8dqrow --regional)' > /tmp/logs/wan-sweep.log 2>&1
tail -1 /tmp/logs/wan-sweep.log
python3 -c "
import pandas as pd; d=pd.read_csv('$OUT/wan22-ti2v-5b-part2.csv'); print(d[['status','campaign','time_median_s','compile_s','model_memory_GiB','inference_memory_GiB','psnr_db','error']].to_string())"
tar czf $OUT/logs-wan.tar.gz -C /tmp/logs wan wan-sweep.log
