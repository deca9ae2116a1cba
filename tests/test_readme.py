"""The README's recipe runs (on the CPU, tiny preset, int8 in place of fp8), and every number the README and the
docs quote is exactly the value of the row its marker names (utils/quotes.py, docs/quoted-rows.md). Nothing here
depends on section titles, table sizes or how many numbers a page quotes."""

import pytest
import torch

from tests.conftest import REPO_ROOT
from utils import quotes
from utils.fp8_kernels import Fp8RowLinear

README_PATH = REPO_ROOT / "README.md"
README = README_PATH.read_text()


def recipe(name: str) -> str:
    block = README.split(f"<!-- recipe:{name} -->", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


def replace(code: str, old: str, new: str) -> str:
    assert old in code, f"the README recipe no longer contains {old!r}"
    return code.replace(old, new)


def test_the_recipe_runs_on_cpu():
    """fp8 layers run on the CPU too (torch._scaled_mm and the kernel's PyTorch reference); torchao's fp8dqrow does
    not, so int8 weight-only stands in for it, and the CUDA graph is left out."""
    code = recipe("flux-fastest-lossless")
    pretrained = 'FluxPipeline.from_pretrained("black-forest-labs/FLUX.1-dev", dtype=torch.bfloat16).to("cuda")'
    code = replace(code, pretrained, 'build_pipeline("tiny-flux", "random", "cpu", torch.bfloat16, 0)')
    fp8 = ("Float8DynamicActivationFloat8WeightConfig(\n    granularity=PerRow(), activation_value_lb=1e-12, "
           "set_inductor_config=False)")
    code = replace(code, fp8, "Int8WeightOnlyConfig(set_inductor_config=False)")
    code = replace(code, "pipe.transformer.forward = GraphedForward(pipe.transformer.forward)", "")
    code = replace(code, "num_inference_steps=28,",
                   "num_inference_steps=2, height=64, width=64, max_sequence_length=32,")
    namespace = {}
    try:
        exec("from utils.pipelines import build_pipeline\nfrom torchao.quantization import Int8WeightOnlyConfig\n"
             + code, namespace)
    finally:
        torch._inductor.config.inductor_choices_class = None
        torch._dynamo.reset()
    transformer = namespace["pipe"].transformer
    assert namespace["image"].size == (64, 64)
    assert type(transformer.transformer_blocks[0].attn.to_qkv.weight).__module__.startswith("torchao")
    assert not hasattr(transformer.transformer_blocks[0].attn, "to_q")
    assert isinstance(transformer.single_transformer_blocks[0].proj_out, Fp8RowLinear)


@pytest.fixture(scope="module")
def sources():
    return quotes.load_sources()


def test_every_quoted_number_is_its_row_and_every_result_in_the_readme_is_quoted(sources):
    problems = quotes.check_files(quotes.quoted_files(), sources, every_number=(README_PATH,))
    assert not problems, "\n".join(problems)


def test_the_readme_quotes_its_results_and_every_row_name_is_used(sources):
    used = set()
    for path in quotes.quoted_files():
        for quote in quotes.find_quotes(path.read_text(), path.name)[0]:
            used |= quotes.referenced_names(quote.expression)
    assert quotes.find_quotes(README)[0], "the README quotes no row"
    assert set(sources) - used == set(), "names in docs/quoted-rows.md that nothing quotes"


def bumped(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def test_any_quoted_number_that_drifts_from_its_row_fails(sources):
    found, _ = quotes.find_quotes(README)
    for quote in found:
        quote.number = bumped(quote.number)
        assert any("its rows give" in problem for problem in quotes.check_quote(quote, sources)), quote


def check_text(text: str, sources) -> list[str]:
    found, problems = quotes.find_quotes(text)
    return problems + [problem for quote in found for problem in quotes.check_quote(quote, sources)]


def test_a_ratio_across_campaigns_fails(sources):
    # the same bf16 eager configuration, in the ladder's campaign and in the grid's
    text = "H100, random weights: 1.00×<!--=ladder-1.t/dev1-bf16.t-->."
    assert any("combines rows of 2 campaigns" in problem for problem in check_text(text, sources))
    assert not check_text("H100, random weights: 1.79×<!--=ladder-1.t/ladder-5.t-->.", sources)


def test_a_result_must_say_random_weights_and_its_gpu(sources):
    problems = check_text("It took 2.975 s<!--=ladder-5.t-->.", sources)
    assert any("random weights" in problem for problem in problems)
    assert any("H100" in problem for problem in problems)
    assert not check_text("Random weights, on the H100.\n\n| median s |\n|---:|\n| 2.975<!--=ladder-5.t--> |", sources)


def test_a_marker_must_follow_a_number_and_name_a_row(sources):
    assert check_text("H100, random weights: fast<!--=ladder-5.t-->", sources)
    assert any("no row named" in problem for problem in check_text("H100 random weights 2.9<!--=nope.t-->", sources))
    problems = check_text("H100 random weights 2.9<!--=ladder-5.nope-->", sources)
    assert any("no column" in problem for problem in problems)


def test_an_unmarked_result_in_the_readme_fails():
    assert quotes.unmarked_numbers("The recipe took 2.975 s on the H100.")
    assert quotes.unmarked_numbers("| recipe | 2.975 |")
    assert quotes.unmarked_numbers("1.79× faster")
    assert not quotes.unmarked_numbers("took 2.975 s<!--=ladder-5.t--> and `--persistent_reductions_up_to 16384`")
    assert quotes.unmarked_numbers("took 2.975 s<!-- a comment is not a marker -->")
    assert not quotes.unmarked_numbers("the seed's 6.573 s<!--seed-->, a 20 GiB<!--bound--> target, 49×480×720, 28 "
                                       "steps")


def test_a_selector_must_pick_exactly_one_row(tmp_path):
    table = tmp_path / "rows.md"
    table.write_text("| name | file | selector |\n|---|---|---|\n"
                     "| `two` | `results/flux-perf-ladder.csv` | `campaign=f99fcd0:ladder-a:1125T2041` |\n")
    with pytest.raises(ValueError, match="selects 5 rows"):
        quotes.load_sources(table)
    table.write_text("| name | file | selector |\n|---|---|---|\n| `none` | `results/no-such.csv` | `step=1` |\n")
    with pytest.raises(ValueError, match="no such file"):
        quotes.load_sources(table)


def test_the_quotes_command_refuses_a_bad_name_or_file_in_one_line(capsys, tmp_path):
    (tmp_path / "latin1.md").write_bytes("caf\xe9 2.5 s".encode("latin-1"))
    for argv, message in [(["--show", "ladder_5"], "no such row name"), (["--show"], "expected one argument"),
                          (["no-such-file.md"], "not a file: no-such-file.md"),
                          (["--show", "ladder-5", "README.md"], "give it alone"),
                          ([str(tmp_path / "latin1.md")], "latin1.md: not UTF-8 text")]:
        with pytest.raises(SystemExit) as stop:
            quotes.main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert quotes.main(["--show", "ladder-5"]) == 0
    assert capsys.readouterr().out.startswith("ladder-5: results/")
