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
    pretrained = 'FluxPipeline.from_pretrained("black-forest-labs/FLUX.1-dev", dtype=torch.bfloat16).to("cuda")'
    code = replace(code, pretrained, 'build_pipeline("tiny-flux", "random", "cpu", torch.bfloat16, 0)')
    code = replace(code, "Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False)",
                   "Int8WeightOnlyConfig(set_inductor_config=False)")
    code = replace(code, "num_inference_steps=28,",
                   "num_inference_steps=2, height=64, width=64, max_sequence_length=32,")
    namespace = {}
    exec("from utils.pipelines import build_pipeline\nfrom torchao.quantization import Int8WeightOnlyConfig\n" + code,
         namespace)
    assert namespace["image"].size == (64, 64)
    assert type(namespace["pipe"].transformer.transformer_blocks[0].attn.to_qkv.weight).__module__.startswith("torchao")


def readme_section(start: str, end: str) -> str:
    return README.split(start, 1)[1].split(end, 1)[0]


def assert_measured(numbers: list[str], column: pd.Series, digits: int, where: str) -> None:
    """Every number the README quotes is a value of `column`, rounded as the README rounds it."""
    for number in numbers:
        assert (column.round(digits) == float(number)).any(), f"{number} is not in {where}"


def test_readme_results_match_the_csv():
    section = readme_section("## Results", "## Video results").split("\n\n", 2)[2]
    medians = re.findall(r"^\| [^|]+ \| \**([0-9.]+)\** \|", section, flags=re.MULTILINE)
    assert len(medians) >= 8
    measured = read_rows(REPO_ROOT / "results" / "flux-dev.csv")
    assert_measured(medians, measured.time_median_s, 3, "the medians of results/flux-dev.csv")


def test_video_readme_numbers_match_the_csv():
    section = readme_section("## Video results", "### Latency")
    peaks = re.findall(r"^\| [^|]+ \| [^|]+ \| ([0-9.]+) \|", section, flags=re.MULTILINE)
    assert len(peaks) == 6
    measured = read_rows(REPO_ROOT / "results" / "cogvideox-5b.csv")
    assert_measured(peaks, measured.inference_memory_GiB, 2, "the peaks of results/cogvideox-5b.csv")


def test_video_latency_and_training_numbers_match_the_csvs():
    section = readme_section("### Latency", "## Training")
    medians = re.findall(r"^\| [^|]+ \| [^|]+ \| ([0-9.]+) \|", section, flags=re.MULTILINE)
    assert len(medians) == 13
    measured = pd.concat([read_rows(REPO_ROOT / "results" / f"cogvideox-{size}.csv") for size in ("2b", "5b")])
    assert_measured(medians, measured.time_median_s, 3, "the CogVideoX CSVs")
    section = readme_section("## Training", "## Layout")
    steps = re.findall(r"^\| [^|]+ \| [^|]+ \| ([0-9.]+) \|", section, flags=re.MULTILINE)
    assert len(steps) == 10
    trained = pd.read_csv(REPO_ROOT / "results" / "train-flux-dev.csv")
    assert_measured(steps, trained.step_median_s, 3, "train-flux-dev.csv")


def test_ladder_numbers_match_the_csv():
    section = readme_section("### The performance ladder", "## Results")
    medians = re.findall(r"^\| [^|]+ \| [^|]+ \| \**([0-9.]+)\** \|", section, flags=re.MULTILINE)
    assert len(medians) == 10
    measured = read_rows(REPO_ROOT / "results" / "flux-perf-ladder.csv")
    assert_measured(medians, measured.time_median_s, 3, "the medians of flux-perf-ladder.csv")
    peaks = re.findall(r" \| ([0-9.]+) \|$", section, flags=re.MULTILINE)
    assert_measured(peaks, measured.inference_memory_GiB, 2, "the peaks of flux-perf-ladder.csv")
