"""autoquant (ours): recording one forward pass, planning per shape group, the plan file, and applying it."""

import dataclasses
import logging

import pandas as pd
import pytest

from inference import benchmark_image
from tests.conftest import expect_exit_2
from tests.test_quant import relative_error, tiny_transformer, transformer_inputs
from utils import autoquant
from utils.quant import count_quantized_linears, quantizable_linear


def forward_twice(model):
    """A `run` that would call the model twice: the recording must stop after the first forward."""
    inputs = transformer_inputs(model)

    def run():
        model(**inputs)
        model(**inputs)
    return run


@pytest.fixture(scope="module")
def plan():
    model = tiny_transformer()
    return autoquant.make_plan(model, forward_twice(model), device="cpu")


def test_recording_stops_after_one_forward_and_groups_every_quantizable_linear():
    model = tiny_transformer()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    groups, inputs = autoquant.record_linear_inputs(model, forward_twice(model))
    assert len(calls) == 1
    layers = [name for group in groups for name in group.layers]
    expected = [name for name, module in model.named_modules() if quantizable_linear(module, name)]
    assert sorted(layers) == sorted(expected) and len(set(layers)) == len(layers)
    for group in groups:
        x = inputs[(group.out_features, group.in_features, group.rows)]
        assert x.shape[-1] == group.in_features and x.numel() // x.shape[-1] == group.rows
        assert all(model.get_submodule(name).weight.shape == (group.out_features, group.in_features)
                   for name in group.layers)


def test_plan_times_what_the_cpu_can_run_and_skips_the_rest_with_a_reason(plan):
    timed = [group for group in plan.groups if group.rows > autoquant.PER_IMAGE_ROWS]
    assert timed and len(timed) < len(plan.groups)  # tiny-flux has per-image layers (1 row) too
    for group in plan.groups:
        assert set(group.timings_ms) | set(group.skipped) == set(autoquant.CANDIDATES)
        if group.rows <= autoquant.PER_IMAGE_ROWS:
            assert group.choice == "None" and not group.timings_ms and "too small to gain" in group.skipped["int8wo"]
    for group in timed:
        assert group.bf16_ms > 0
        assert {"fp8dq", "fp8dqrow"} <= set(group.skipped)
        assert "runs only on CUDA" in group.skipped["fp8dq"]
        assert "int8wo" in group.timings_ms and group.errors["int8wo"] < 0.05
        if group.choice != "None":
            assert group.errors[group.choice] <= plan.max_error
            assert group.bf16_ms / group.timings_ms[group.choice] >= autoquant.MIN_GAIN
    assert sum(plan.counts().values()) == sum(len(group.layers) for group in plan.groups)
    assert plan.model_wide_fastest in {"None", *plan.candidates}
    assert "shape groups" in plan.summary()


def test_layers_fed_one_row_per_prompt_token_get_weight_only_candidates():
    """A preset's few_rows_layers (Qwen-Image's unpadded text stream) may see fewer rows in the next call than in the
    recorded one: only weight-only candidates are timed for them, and the plan's fingerprint says so."""
    model = tiny_transformer()
    few_rows = r"^single_transformer_blocks\."  # 24 rows in tiny-flux (16 image + 8 text tokens): timed otherwise
    plan = autoquant.make_plan(model, forward_twice(model), device="cpu", few_rows_pattern=few_rows)
    marked = [group for group in plan.groups
              if group.layers[0].startswith("single_transformer_blocks.") and group.rows > autoquant.PER_IMAGE_ROWS]
    assert marked
    for group in marked:
        assert set(group.timings_ms) <= set(autoquant.WEIGHT_ONLY) and "int8wo" in group.timings_ms
        assert "weight-only candidates only" in group.skipped["int8dq"]
    assert plan.fingerprint != autoquant.make_plan(model, forward_twice(model), device="cpu").fingerprint


def test_choice_is_the_fastest_candidate_under_the_error_bound():
    group = autoquant.LayerGroup(64, 64, 4096, ["a"], bf16_ms=1.0,
                                 timings_ms={"int8wo": 0.8, "fp8dq": 0.5, "int8dq": 0.6},
                                 errors={"int8wo": 0.01, "fp8dq": 0.2, "int8dq": 0.02})
    assert autoquant.choose(group, max_error=0.05) == "int8dq"
    assert autoquant.choose(group, max_error=0.5) == "fp8dq"
    assert autoquant.choose(group, max_error=0.001) == "None"
    group.timings_ms = {"int8wo": 0.99, "int8dq": 0.98, "fp8dq": 0.97}  # under MIN_GAIN: too small to gain
    assert autoquant.choose(group, max_error=0.5) == "None"


def test_near_ties_go_to_the_candidate_fastest_over_the_whole_model():
    errors = {"fp8dq": 0.01, "fp8dqrow": 0.01}
    wide = autoquant.LayerGroup(64, 64, 4096, ["a", "b", "c"], bf16_ms=2.0, timings_ms={"fp8dq": 1.0, "fp8dqrow": 0.9},
                                errors=dict(errors))
    narrow = autoquant.LayerGroup(64, 32, 4096, ["d"], bf16_ms=1.0, timings_ms={"fp8dq": 0.50, "fp8dqrow": 0.52},
                                  errors=dict(errors))
    assert autoquant.model_wide_fastest([wide, narrow], max_error=0.05) == "fp8dqrow"  # 3 x 0.9 + 0.52 < 3 x 1 + 0.5
    assert autoquant.choose(narrow, max_error=0.05) == "fp8dq"
    assert autoquant.choose(narrow, max_error=0.05, preferred="fp8dqrow") == "fp8dqrow"  # 4% slower: a tie
    narrow.timings_ms["fp8dqrow"] = 0.60  # 20% slower: the group's own fastest wins
    assert autoquant.choose(narrow, max_error=0.05, preferred="fp8dqrow") == "fp8dq"
    narrow.timings_ms["fp8dqrow"], narrow.errors["fp8dqrow"] = 0.51, 0.2  # over the error bound: never preferred
    assert autoquant.choose(narrow, max_error=0.05, preferred="fp8dqrow") == "fp8dq"
    assert autoquant.model_wide_fastest([narrow], max_error=0.05) == "fp8dq"  # fp8dqrow is over the bound here
    assert autoquant.model_wide_fastest([wide, narrow], max_error=0.05) == "fp8dq"  # the only one eligible everywhere
    assert autoquant.model_wide_fastest([], max_error=0.05) == "None"
    # totals within NEAR_TIE of each other: TIE_ORDER decides, not a 1% difference in summed per-layer timings
    wide.timings_ms = {"fp8dq": 0.99, "fp8dqrow": 1.0}
    assert autoquant.model_wide_fastest([wide], max_error=0.05) == "fp8dqrow" == autoquant.TIE_ORDER[0]
    # the preferred candidate must still beat bf16 by MIN_GAIN: never trade a quantized group for bf16
    narrow.bf16_ms, narrow.timings_ms, narrow.errors["fp8dqrow"] = 1.06, {"fp8dq": 1.0, "fp8dqrow": 1.04}, 0.01
    assert autoquant.choose(narrow, max_error=0.05, preferred="fp8dqrow") == "fp8dq"


def test_applied_plan_replaces_exactly_the_planned_layers_and_stays_close_to_bf16(plan):
    forced = dataclasses.replace(plan, groups=[dataclasses.replace(group, choice="int8wo" if index % 2 else "None")
                                               for index, group in enumerate(plan.groups)])
    model = tiny_transformer()
    inputs = transformer_inputs(model)
    reference = model(**inputs).sample
    assert autoquant.apply_plan(model, forced) == forced.counts().get("int8wo", 0) > 0
    for group in forced.groups:
        quantized = type(model.get_submodule(group.layers[0]).weight).__module__.startswith("torchao")
        assert quantized == (group.choice == "int8wo")
    assert relative_error(model(**inputs).sample, reference) < 0.05


def test_saved_plan_is_reused_without_timing(plan, tmp_path, monkeypatch):
    path = tmp_path / "plan.json"
    autoquant.save_plan(plan, path)
    assert autoquant.load_plan(path) == plan
    monkeypatch.setattr(autoquant, "make_plan", lambda *args, **kwargs: pytest.fail("planned again"))
    model = tiny_transformer()
    reused_plan, reused = autoquant.autoquant(model, forward_twice(model), device="cpu", plan_path=path)
    assert reused and reused_plan == plan
    assert count_quantized_linears(model) == sum(n for name, n in plan.counts().items() if name != "None")


def test_plan_for_other_settings_or_a_corrupt_file_fails_clearly(plan, tmp_path):
    path = tmp_path / "plan.json"
    autoquant.save_plan(plan, path)
    model = tiny_transformer()
    with pytest.raises(ValueError, match="planned for another model, device, package version or settings"):
        autoquant.autoquant(model, forward_twice(model), device="cpu", plan_path=path, max_error=0.2)
    with pytest.raises(ValueError, match="planned for another"):
        autoquant.autoquant(model, forward_twice(model), device="cpu", plan_path=path, skip_pattern="proj_out")
    path.write_text(path.read_text().replace(f'"version": {autoquant.PLAN_VERSION}', '"version": 1'))
    with pytest.raises(ValueError, match="plan version 1, expected"):  # timed with launch overhead
        autoquant.load_plan(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not an autoquant plan"):
        autoquant.load_plan(path)


def test_candidates_are_timed_as_gpu_time_only_where_the_benchmark_compiles_without_cuda_graphs():
    assert autoquant.times_kernels_only("cuda", "default")
    assert autoquant.times_kernels_only("cuda", "max-autotune-no-cudagraphs")
    assert not autoquant.times_kernels_only("cuda", None)  # eager: the host's dispatch is part of the cost
    assert not autoquant.times_kernels_only("cuda", "reduce-overhead")
    assert not autoquant.times_kernels_only("cpu", "default")


def test_benchmark_plans_then_reuses_and_records_the_summary(run_args, tmp_path, caplog, capsys):
    caplog.set_level(logging.INFO, logger="utils.levers.autoquant")
    plan_path = tmp_path / "plans" / "tiny.json"
    argv = [*run_args, "--quantization", "autoquant", "--autoquant_plan", str(plan_path), "--num_inference_steps", "2"]
    assert benchmark_image.main(argv) == 0
    assert "autoquant planned:" in caplog.text and plan_path.is_file()
    caplog.clear()
    assert benchmark_image.main(argv) == 0
    assert "autoquant reused:" in caplog.text
    rows = pd.read_csv(tmp_path / "results.csv")
    assert list(rows.status) == ["ok", "ok"]
    assert rows.autoquant[0].startswith("planned: ") and rows.autoquant[1].startswith("reused: ")
    assert rows.n_layers_quantized[0] == rows.n_layers_quantized[1]
    assert rows.plan_s[0] > 0 and pd.isna(rows.plan_s[1])  # planning has its own column; reusing plans nothing
    assert rows.latent_rel_l2.max() < 0.05
    # a plan for another error bound or model is refused before any model is built
    capsys.readouterr()
    expect_exit_2(benchmark_image.main, [*argv, "--autoquant_max_error", "0.01"],
                  "with max error 0.05, not FluxTransformer2DModel with 0.01", capsys)
    qwen = [*argv, "--ckpt_id", "tiny-qwen-image"]
    expect_exit_2(benchmark_image.main, qwen, "planned for FluxTransformer2DModel with max error 0.05, not "
                  "QwenImageTransformer2DModel", capsys)
