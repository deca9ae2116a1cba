# issue 19: VAE decode compile variants at 1024², each in its own process with empty caches.
nvidia-smi --query-gpu=name,memory.total --format=csv
mkdir -p /tmp/logs
for v in ${VARIANTS:-eager eager_cl full full_cl full_nolayout decoder regional}; do
  C=$(mktemp -d); TORCHINDUCTOR_CACHE_DIR=$C TRITON_CACHE_DIR=$C/triton timeout ${VTIMEOUT:-60} python3 outputs/gpu19/vae_probe.py $v 2>/tmp/logs/$v.err | tee -a $OUT/vae_probe.jsonl; echo "$v rc $?"
done
tar czf $OUT/logs.tgz -C /tmp logs 2>/dev/null
