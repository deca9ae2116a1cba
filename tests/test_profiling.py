"""The profile summary: kernels sorted into categories, shares that add up, a readable markdown file."""

import torch

from utils.profiling import OTHER, KernelTime, category_of, kernel_times, profile_call, render_profile, write_profile


def test_kernel_names_fall_into_categories():
    assert category_of("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64") == "gemm"
    assert category_of("nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_TNN") == "gemm"
    assert category_of("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128>>") == "attention"
    assert category_of("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention"
    assert category_of("aten::addmm") == "gemm"
    assert category_of("triton_poi_fused_add_mul_0") == OTHER
    assert category_of("triton_per_fused__scaled_mm__to_copy_abs_amax_clamp_div_0") == OTHER  # the input's quantization
    assert category_of("triton_poi_fused__flash_attn_forward__to_copy_add_cat_0") == OTHER
    assert category_of("triton_tem_fused_mm_0") == "gemm"
    assert category_of("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc") == "convolution"
    assert category_of("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7") == "attention"
    assert category_of("Memcpy DtoD (Device -> Device)") == "copy / memory"


def test_summary_shares_add_up():
    kernels = [KernelTime("aten::mm", 4, 30.0, "gemm"), KernelTime("aten::add", 8, 10.0, OTHER)]
    text = render_profile(kernels, "tiny", wall_s=0.05)
    assert "| gemm | 30.0 | 75.0% |" in text and "| elementwise / norms / other | 10.0 | 25.0% |" in text
    assert "80% busy" in text


def test_profile_of_a_cpu_pipeline_call(tiny_pipe, tmp_path):
    def call():
        return tiny_pipe("a dog", num_inference_steps=2, height=64, width=64, max_sequence_length=32,
                         generator=torch.Generator().manual_seed(0))

    profiler, wall_s = profile_call(call, "cpu")
    kernels = kernel_times(profiler, "cpu")
    assert wall_s > 0
    assert kernels and all(kernel.name.startswith("aten::") and kernel.ms > 0 for kernel in kernels)
    assert {"gemm", "attention"} <= {kernel.category for kernel in kernels}
    path = write_profile(call, "cpu", tmp_path / "profile.md", "tiny-flux on the CPU")
    assert path.read_text().startswith("# tiny-flux on the CPU") and path.with_suffix(".txt").is_file()


def test_benchmark_profile_flag_writes_the_summary(run_args, tmp_path):
    from inference import benchmark_image

    path = tmp_path / "profile.md"
    assert benchmark_image.main([*run_args, "--num_inference_steps", "2", "--profile", str(path)]) == 0
    text = path.read_text()
    assert "| gemm |" in text and "Top 15 kernels" in text and "| denoiser | 2 |" in text
    assert "torch " in text.splitlines()[2] and "random weights" in text.splitlines()[2]  # under the command


def test_a_call_splits_into_its_stages(tiny_pipe):
    from utils.profiling import time_stages

    generator = torch.Generator("cpu").manual_seed(0)
    stages, call_ms = time_stages(tiny_pipe, lambda: tiny_pipe(prompt="a", num_inference_steps=3, height=64,
                                                                width=64, generator=generator), "cpu")
    assert stages["text encoders"][0] == 2 and stages["denoiser"][0] == 3 and stages["VAE decode"][0] == 1
    assert 0 < sum(ms for _, ms in stages.values()) < call_ms
    assert "decode" not in vars(tiny_pipe.vae)  # the class's decode again


def test_the_stage_split_leaves_a_replaced_decode_in_place(tiny_pipe):
    """--compile_vae puts a compiled decode on the VAE instance: the profiled call after the split must still use it."""
    from utils.profiling import time_stages

    compiled_decode = tiny_pipe.vae.decode  # a bound method stands in for torch.compile's wrapper
    tiny_pipe.vae.decode = compiled_decode
    try:
        time_stages(tiny_pipe, lambda: tiny_pipe(prompt="a", num_inference_steps=1, height=64, width=64), "cpu")
        assert vars(tiny_pipe.vae)["decode"] is compiled_decode
    finally:
        vars(tiny_pipe.vae).pop("decode", None)
