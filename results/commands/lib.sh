# Shared by the scripts in this folder: run each configuration in its own process, with a timeout, so a crash or hang
# in one never ends the others.

# One run of a job script is one campaign (utils/campaign.py): every row it writes gets this id, unless the caller set
# BENCH_CAMPAIGN already. Same spelling as utils.campaign.new_campaign_id: UTC start time and 4 hex digits.
export BENCH_CAMPAIGN=${BENCH_CAMPAIGN:-$(date -u +%Y%m%dT%H%M%SZ)-$(printf '%04x' "$RANDOM")}

# A job runs every configuration, then exits 1 if any of them failed (so a caller or CI sees it), 0 otherwise.
failed_configs=()
record_exit() {  # record_exit STATUS NAME: print the configuration's exit status and remember a failure
  echo "exit $1 after ${SECONDS}s"
  [ "$1" -eq 0 ] || failed_configs+=("$2 (exit $1)")
}
finish_job() {  # the job's last line
  if [ ${#failed_configs[@]} -gt 0 ]; then
    echo "${#failed_configs[@]} configuration(s) failed: ${failed_configs[*]}" >&2
    exit 1
  fi
  exit 0
}

# run_configs SCRIPT CSV LOG_DIR TIMEOUT_S "COMMON FLAGS" "name|flags" ...   (ONLY=regex runs a subset)
run_configs() {
  local script=$1 csv=$2 logs=$3 timeout_s=$4 common=$5 entry name flags cache
  shift 5
  mkdir -p "$logs"
  for entry in "$@"; do
    [[ -n "${ONLY:-}" && ! "$entry" =~ ${ONLY} ]] && continue
    name=${entry%%|*}; flags=${entry#*|}
    echo "=== $name: $flags"
    # An empty compile cache per configuration, as inference/sweep.py gives: compile_s never depends on what ran
    # before, and no configuration loads another's compiled graph.
    cache=$(mktemp -d -t inductor-XXXXXX) || { failed_configs+=("$name (no cache folder)"); continue; }
    # shellcheck disable=SC2086
    TORCHINDUCTOR_CACHE_DIR=$cache TRITON_CACHE_DIR=$cache/triton \
      timeout "$timeout_s" python3 "$script" $common $flags --csv "$csv" > "$logs/$name.log" 2>&1
    record_exit $? "$name"
    rm -rf "$cache"
    grep -E '^\| (THUDM|black)|Error|: error: |: ok, step|: (error|oom|nan) ' "$logs/$name.log" | tail -3 | cut -c1-300
  done
}
