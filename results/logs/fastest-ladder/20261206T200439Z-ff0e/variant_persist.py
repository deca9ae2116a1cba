"""Issue 19 probe: benchmark_image.py with inductor's persistent-reduction choice widened for small reductions whose
hint is not INNER (inductor's threshold for those is 64 elements; RMSNorm over head_dim 128 may fall there).
Prints every decision it changes (hint, numel) to stderr."""
import runpy, sys
from torch._inductor.choices import InductorChoices
from torch._inductor.runtime.hints import ReductionHint
from torch._inductor.virtualized import V

original = InductorChoices.should_use_persistent_reduction
LIMIT = int(__import__("os").environ.get("PROBE_NON_INNER_LIMIT", "256"))
seen = set()

def wider(features, cooperative_reduction):
    decision = original(features, cooperative_reduction)
    hint = features.get_reduction_hint()
    numel = features.reduction_numel
    if (not decision and not cooperative_reduction and hint != ReductionHint.INNER
            and V.graph.sizevars.statically_known_leq(numel, LIMIT)):
        key = (str(hint), str(numel), str(features.numel))
        if key not in seen:
            seen.add(key); print(f"probe: persistent now for hint={hint} rnumel={numel} numel={features.numel}", file=sys.stderr)
        return True
    return decision

InductorChoices.should_use_persistent_reduction = staticmethod(wider)
sys.argv = ["inference/benchmark_image.py", *sys.argv[1:]]
runpy.run_path("inference/benchmark_image.py", run_name="__main__")
