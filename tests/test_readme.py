"""The README's recipe runs (on the CPU, tiny preset, int8 in place of fp8) and its result numbers come from the CSV."""

import re

import pandas as pd

from tests.conftest import REPO_ROOT
from utils.results import read_rows

README = (REPO_ROOT / "README.md").read_text()


def recipe(name: str) -> str:
    block = README.split(f"<!-- recipe:{name} -->", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


def replace(code: str, old: str, new: str) -> str:
    assert old in code, f"the README recipe no longer contains {old!r}"
    return code.replace(old, new)


def test_fp8_recipe_runs_on_cpu_with_int8():
    code = recipe("flux-fp8dqrow")
    code = replace(code, 'FluxPipeline.from_pretrained("black-forest-labs/FLUX.1-dev", dtype=torch.bfloat16).to("cuda")',
                   'build_pipeline("tiny-flux", "random", "cpu", torch.bfloat16, 0)')
    code = replace(code, "Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False)",
                   "Int8WeightOnlyConfig(set_inductor_config=False)")
    code = replace(code, "num_inference_steps=28,", "num_inference_steps=2, height=64, width=64, max_sequence_length=32,")
    namespace = {}
    exec("from utils.pipelines import build_pipeline\nfrom torchao.quantization import Int8WeightOnlyConfig\n" + code,
         namespace)
    assert namespace["image"].size == (64, 64)
    assert type(namespace["pipe"].transformer.transformer_blocks[0].attn.to_qkv.weight).__module__.startswith("torchao")


def test_readme_results_match_the_csv():
    section = README.split("## Results", 1)[1].split("## Video results", 1)[0].split("\n\n", 2)[2]
    medians = re.findall(r"^\| [^|]+ \| \**([0-9.]+)\** \|", section, flags=re.MULTILINE)
    assert len(medians) >= 8
    measured = read_rows(REPO_ROOT / "results" / "flux-dev.csv").time_median_s.dropna()
    for median in medians:
        assert (measured.round(3) == float(median)).any(), f"{median} s is not a median in results/flux-dev.csv"


def test_video_readme_numbers_match_the_csv():
    section = README.split("## Video results", 1)[1].split("### Latency", 1)[0]
    peaks = re.findall(r"^\| [^|]+ \| [^|]+ \| ([0-9.]+) \|", section, flags=re.MULTILINE)
    assert len(peaks) == 6
    measured = read_rows(REPO_ROOT / "results" / "cogvideox-5b.csv").inference_memory_GiB
    for peak in peaks:
        assert (measured.round(2) == float(peak)).any(), f"{peak} GiB is not a peak in results/cogvideox-5b.csv"


def test_video_latency_and_training_numbers_match_the_csvs():
    section = README.split("### Latency", 1)[1].split("## Training", 1)[0]
    medians = re.findall(r"^\| [^|]+ \| [^|]+ \| ([0-9.]+) \|", section, flags=re.MULTILINE)
    assert len(medians) == 13
    measured = pd.concat([read_rows(REPO_ROOT / "results" / f"cogvideox-{size}.csv") for size in ("2b", "5b")])
    for median in medians:
        assert (measured.time_median_s.round(3) == float(median)).any(), f"{median} s is not in the CogVideoX CSVs"
    section = README.split("## Training", 1)[1].split("## Layout", 1)[0]
    steps = re.findall(r"^\| [^|]+ \| [^|]+ \| ([0-9.]+) \|", section, flags=re.MULTILINE)
    assert len(steps) == 8
    trained = pd.read_csv(REPO_ROOT / "results" / "train-flux-dev.csv")
    for step in steps:
        assert (trained.step_median_s.round(3) == float(step)).any(), f"{step} s is not in train-flux-dev.csv"


def test_ladder_numbers_match_the_csv():
    section = README.split("### The performance ladder", 1)[1].split("## Results", 1)[0]
    medians = re.findall(r"^\| [^|]+ \| [^|]+ \| \**([0-9.]+)\** \|", section, flags=re.MULTILINE)
    assert len(medians) == 8
    measured = read_rows(REPO_ROOT / "results" / "flux-perf-ladder.csv")
    for median in medians:
        assert (measured.time_median_s.round(3) == float(median)).any(), f"{median} s is not in flux-perf-ladder.csv"
    for peak in re.findall(r" \| ([0-9.]+) \|$", section, flags=re.MULTILINE):
        assert (measured.inference_memory_GiB.round(2) == float(peak)).any(), f"{peak} GiB is not a ladder peak"
