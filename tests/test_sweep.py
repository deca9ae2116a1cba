"""inference/sweep.py: grid expansion, resume, failures recorded, SIGKILL safety (tiny-flux on the CPU)."""

import json
import subprocess
import sys
import tempfile
import time

import pytest

import utils.sweep
from inference import sweep
from tests.conftest import REPO_ROOT
from utils import report
from utils.results import COLUMNS, read_rows

TINY_FIXED = {"ckpt_id": "tiny-flux", "device": "cpu", "warmup": 1, "runs": 1}


def spec(**grid):
    return {"script": "inference/benchmark_image.py", "fixed": TINY_FIXED, "grid": grid,
            "when": [{"if": {"compile": True}, "set": {"fuse_attn_projections": True}}]}


def sweep_args(tmp_path, *flags):
    return ["--script", "inference/benchmark_image.py", *(f"--set={k}={v}" for k, v in TINY_FIXED.items()),
            "--csv", str(tmp_path / "sweep.csv"), *flags]


def test_a_flag_given_by_two_of_its_names_appears_once_with_the_later_value():
    """--vary model_id over a grid file's ckpt_id: the later spelling wins, and no model runs twice."""
    script = "inference/benchmark_image.py"
    configs = utils.sweep.expand({"script": script, "grid": {"ckpt_id": ["tiny-flux", "tiny-qwen-image"],
                                                             "model_id": ["tiny-flux", "tiny-qwen-image"]},
                                  "override": {"fuse_qkv": True}, "fixed": {"fuse_attn_projections": False},
                                  "flag_names": utils.sweep.flag_names(script)})
    assert [config.command() for config in configs] == [
        f"python {script} --model_id {model} --fuse_qkv" for model in ("tiny-flux", "tiny-qwen-image")]


def test_expand_crosses_the_grid_and_applies_rules():
    configs = utils.sweep.expand(spec(quantization=["None", "int8wo"], compile=[False, True]))
    assert len(configs) == 4
    compiled = [c.command() for c in configs if "--compile" in c.command()]
    assert len(compiled) == 2 and all("--fuse_attn_projections" in command for command in compiled)
    assert not any("--fuse_attn_projections" in c.command() for c in configs if "--compile" not in c.command())


def test_rules_match_values_given_on_the_command_line(tmp_path):
    """A grid file's rule says batch_size 4 (a number); --vary gives the text "4"."""
    rules = [{"if": {"batch_size": 4, "compile": False}, "set": {"warmup": 3}},
             {"if": {"quantization": "None"}, "set": {"runs": 7}}]  # no config sets quantization: never fires
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"script": "inference/benchmark_image.py", "fixed": TINY_FIXED,
                                "grid": {"batch_size": [1, 4], "compile": [False, True]}, "when": rules}))
    parser = sweep.build_parser()
    for narrowed in [[], ["--vary", "batch_size=4"], ["--vary", "batch_size=1,4", "--vary", "compile=false,true"]]:
        args = parser.parse_args(["--grid", str(grid), "--csv", str(tmp_path / "x.csv"), *narrowed])
        configs = [dict(c.flags) for c in utils.sweep.expand(sweep.grid_spec(args))]
        assert configs and all(c["runs"] == 1 for c in configs)
        for flags in configs:
            eager_bs4 = str(flags["batch_size"]) == "4" and not flags["compile"]
            assert flags["warmup"] == (3 if eager_bs4 else 1), (narrowed, flags)
        assert any(str(flags["batch_size"]) == "4" and not flags["compile"] for flags in configs)


def test_a_rule_matches_a_flag_spelled_by_its_alias(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"script": "inference/benchmark_image.py", "fixed": {"model_id": "tiny-flux"},
                                "grid": {"fuse_qkv": [False, True]},
                                "when": [{"if": {"ckpt_id": "tiny-flux", "fuse_attn_projections": True},
                                          "set": {"runs": 7}},
                                         {"if": {"fuse_qkv": False}, "set": {"warmup": 3}}]}))
    args = sweep.build_parser().parse_args(["--grid", str(grid), "--csv", str(tmp_path / "x.csv")])
    configs = [dict(c.flags) for c in utils.sweep.expand(sweep.grid_spec(args))]
    assert [(flags.get("runs"), flags.get("warmup")) for flags in configs] == [(None, 3), (7, None)]


def test_set_beats_every_value_the_grid_file_gives(tmp_path):
    """--set is a flag every configuration gets: a grid file's fixed flags, a ladder step's `measure` and a job's
    own `set` all give way to it (two jobs it makes equal run once); --set and --vary of one flag is refused."""
    parser = sweep.build_parser()
    grid = REPO_ROOT / "inference/grids/flux-fastest-ladder.json"
    args = parser.parse_args(["--grid", str(grid), "--csv", str(tmp_path / "x.csv"), "--set", "runs=1",
                              "--set", "ckpt_id=tiny-flux"])
    flags = [dict(config.flags) for config in utils.sweep.expand(sweep.grid_spec(args))]
    assert flags and all(f["runs"] == "1" and f["ckpt_id"] == "tiny-flux" for f in flags)
    video = REPO_ROOT / "inference/grids/cogvideox.yaml"
    args = parser.parse_args(["--grid", str(video), "--csv", str(tmp_path / "x.csv"), "--set",
                              "model_id=tiny-cogvideox"])
    flags = [dict(config.flags) for config in utils.sweep.expand(sweep.grid_spec(args))]
    assert {f["model_id"] for f in flags} == {"tiny-cogvideox"}
    args = parser.parse_args(["--grid", str(video), "--csv", str(tmp_path / "x.csv"), "--set", "batch_size=1",
                              "--vary", "batch_size=1,2"])
    with pytest.raises(sweep.UsageError, match="give the flag one way"):
        sweep.grid_spec(args)
    for given in (["--set", "csv=other.csv"], ["--vary", "csv=a.csv,b.csv"]):  # the sweep's --csv decides
        args = parser.parse_args(["--grid", str(video), "--csv", str(tmp_path / "x.csv"), *given])
        with pytest.raises(sweep.UsageError, match="the sweep's own --csv names the one file"):
            sweep.grid_spec(args)


def test_shipped_grids_expand():
    flux = utils.sweep.expand(utils.sweep.load_grid_file(REPO_ROOT / "inference/grids/flux-dev.json"))
    video = utils.sweep.expand(utils.sweep.load_grid_file(REPO_ROOT / "inference/grids/cogvideox.yaml"))
    assert len(flux) == 24 and len(video) == 20
    full = utils.sweep.expand(utils.sweep.load_grid_file(REPO_ROOT / "inference/grids/flux-dev-full.json"))
    flags = [dict(config.flags) for config in full]
    assert len(full) == 75  # 3 batch sizes x (6 quantizations x eager/compiled x unfused/fused + one compiled VAE)
    assert [(f["batch_size"], f["quantization"]) for f in flags if f["compile_vae"]] == [
        (1, "fp8dqrow"), (4, "fp8dqrow"), (8, "fp8dqrow")]
    assert all(f.get("regional_compile", False) == f["compile"] for f in flags)


def test_sweep_runs_and_resumes(tmp_path, capsys):
    args = sweep_args(tmp_path, "--vary", "quantization=None,int8wo", "--timeout", "120")
    assert sweep.main(args) == 0
    frame = read_rows(tmp_path / "sweep.csv")
    assert dict(zip(frame.quantization, frame.status)) == {"None": "ok", "int8wo": "ok"}
    assert frame.campaign.nunique() == 1 and frame.campaign[0] in capsys.readouterr().out  # one sweep, one campaign
    assert frame.host.nunique() == 1 and frame.compile_start.isna().all()  # nothing compiled: no cache state
    assert sweep.main(sweep_args(tmp_path, "--vary", "quantization=None,int8wo,int8dq", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "2 already ok" in out and out.count("\nskip  ") == 2 and out.count("\nrun   ") == 1


def test_each_configuration_compiles_in_an_empty_cache_directory_of_its_own(tmp_path, monkeypatch):
    seen, triton_dirs, campaigns = [], [], []
    real_popen = subprocess.Popen

    def fake_popen(argv, **kwargs):  # the benchmark process replaced by one that writes no row
        if argv[1:2] != [str(REPO_ROOT / "inference/benchmark_image.py")]:
            return real_popen(argv, **kwargs)  # git, asked for the failure row's provenance
        cache_dir = kwargs["env"].get("TORCHINDUCTOR_CACHE_DIR")
        seen.append((cache_dir, cache_dir is not None and utils.sweep.Path(cache_dir).is_dir()))
        campaigns.append(kwargs["env"].get("BENCH_CAMPAIGN"))
        triton_dirs.append(kwargs["env"].get("TRITON_CACHE_DIR"))
        return real_popen([sys.executable, "-c", ""], **kwargs)

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert sweep.main(sweep_args(tmp_path, "--vary", "seed=1,2")) == 1  # no rows written: recorded as crashes
    (first, first_existed), (second, second_existed) = seen
    assert first_existed and second_existed and first != second
    assert [triton_dir.startswith(cache_dir) for triton_dir, (cache_dir, _) in zip(triton_dirs, seen)] == [True, True]
    assert not list((tmp_path / "tmp").iterdir())  # every cache directory removed after its run, and their folder
    rows = read_rows(tmp_path / "sweep.csv")
    assert list(rows.status) == ["crash", "crash"]
    assert campaigns[0] and set(campaigns) == set(rows.campaign)  # the failure rows are the sweep's campaign too
    seen.clear()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "shared"))
    sweep.main(sweep_args(tmp_path, "--vary", "seed=3", "--shared_compile_cache"))
    assert [cache_dir for cache_dir, _ in seen] == [str(tmp_path / "shared")]


def test_a_relative_csv_is_the_sweeps_own_working_directory(tmp_path, monkeypatch):
    """The configurations run in the sweep's working directory: their rows land in the CSV the sweep reads."""
    monkeypatch.chdir(tmp_path)
    args = [*sweep_args(tmp_path)[:-2], "--csv", "relative.csv", "--set", "profile=p.md", "--vary", "seed=1"]
    assert sweep.main(args) == 0
    assert list(read_rows(tmp_path / "relative.csv").status) == ["ok"]
    assert (tmp_path / "p.md").is_file()  # written by the configuration's own process
    assert not (REPO_ROOT / "relative.csv").exists() and not (REPO_ROOT / "p.md").exists()


def test_timeout_is_recorded(tmp_path):
    assert sweep.main(sweep_args(tmp_path, "--vary", "batch_size=1", "--timeout", "1")) == 1
    row = read_rows(tmp_path / "sweep.csv").iloc[0]
    assert (row.status, row.model, row.batch_size) == ("timeout", "tiny-flux", 1) and "stopped after 1 s" in row.error


def test_sigkill_leaves_no_partial_or_duplicated_row(tmp_path):
    args = sweep_args(tmp_path, "--vary", "seed=1,2,3", "--timeout", "120")
    process = subprocess.Popen([sys.executable, "inference/sweep.py", *args], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    csv = tmp_path / "sweep.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (csv.exists() and len(read_rows(csv)) >= 1):
        time.sleep(0.2)
    process.kill()  # SIGKILL: its benchmark process dies with it, so the resume below never runs beside it
    process.wait()
    rows_after_kill = read_rows(csv)
    assert list(rows_after_kill.columns) == COLUMNS and 1 <= len(rows_after_kill) < 3
    assert sweep.main(args) == 0
    final = read_rows(csv)
    assert sorted(final.seed) == [1, 2, 3] and (final.status == "ok").all()


def test_bad_sweep_input(tmp_path, capsys):
    script = ["--script", "inference/benchmark_image.py"]
    for flags, message in [([*script, "--vary", "quantization"], "FLAG=V1,V2"),
                           (["--grid", "nope.json"], "no such file"),
                           (["--grid", str(tmp_path)], "is a folder; give a grid file in it")]:
        try:
            sweep.main(["--csv", str(tmp_path / "x.csv"), *flags])
        except SystemExit as exit_info:
            assert exit_info.code == 2
        assert message in capsys.readouterr().err


def test_failure_rows_read_the_flags_like_the_script_does():
    config = utils.sweep.Config("inference/benchmark_video.py",
                                (("model_id", "THUDM/CogVideoX-2b"), ("dtype", "int8wo"), ("fuse_qkv", True),
                                 ("regional_compile", True)))
    row = utils.sweep.failure_row(config, "timeout", "killed")
    assert (row.model, row.dtype, row.quantization) == (
        "THUDM/CogVideoX-2b", "fp16", "int8wo")
    assert row.fuse_attn_projections and row.compile and row.regional_compile and row.status == "timeout"


def test_script_paths_are_normalized_for_resume(tmp_path, capsys):
    args = ["--script", str(REPO_ROOT / "inference" / "benchmark_image.py"), "--set", "ckpt_id=tiny-flux",
            "--csv", str(tmp_path / "x.csv"), "--dry-run"]
    assert sweep.main(args) == 0
    assert "run   python inference/benchmark_image.py --ckpt_id tiny-flux" in capsys.readouterr().out


LADDER = {"script": "inference/benchmark_image.py", "fixed": TINY_FIXED, "ladder": [
    {"lever": "bf16 eager", "measure": {"runs": 2}},
    {"lever": "int8wo", "set": {"quantization": "int8wo"}},
    {"lever": "fused QKV", "set": {"fuse_attn_projections": True}},
    {"lever": "profiled", "base": 2, "measure": {"profile": "{log_dir}/profile.md"}},
]}


def test_ladder_steps_build_on_their_base():
    configs = [dict(config.flags) for config in utils.sweep.expand(LADDER, utils.sweep.Path("/logs"))]
    assert [(c["ladder_step"], c["ladder_lever"], c["ladder_base"]) for c in configs] == [
        (1, "bf16 eager", None), (2, "int8wo", 1), (3, "fused QKV", 2), (4, "profiled", 2)]
    assert [c["runs"] for c in configs] == [2, 1, 1, 1]  # measure flags stay with their step
    assert [c.get("quantization") for c in configs] == [None, "int8wo", "int8wo", "int8wo"]
    assert [c.get("fuse_attn_projections", False) for c in configs] == [False, False, True, False]
    assert configs[3]["profile"] == "/logs/profile.md"
    bad = {**LADDER, "ladder": [{"lever": "a"}, {"lever": "b", "base": 2}]}
    with pytest.raises(ValueError, match="base 2 is not an earlier step"):
        utils.sweep.expand(bad)


def test_job_lists_run_their_configs_in_order():
    spec = {"script": "inference/benchmark_image.py", "fixed": TINY_FIXED, "when": [],
            "configs": [{"name": "b", "set": {"seed": 2}}, {"name": "a", "set": {"seed": 1, "compile": True}}]}
    configs = [dict(config.flags) for config in utils.sweep.expand(spec)]
    assert [(c["seed"], c.get("compile", False)) for c in configs] == [(2, False), (1, True)]


def test_a_ladder_sweep_writes_step_lever_and_base(tmp_path):
    grid = tmp_path / "ladder.json"
    grid.write_text(json.dumps({**LADDER, "ladder": LADDER["ladder"][:2]}))
    assert sweep.main(["--grid", str(grid), "--csv", str(tmp_path / "ladder.csv"), "--timeout", "300"]) == 0
    frame = read_rows(tmp_path / "ladder.csv")
    assert list(frame.step) == [1, 2] and list(frame.lever) == ["bf16 eager", "int8wo"]
    assert frame.base_step.isna()[0] and frame.base_step[1] == 1
    assert report.main([str(tmp_path / "ladder.csv")]) == 0
    assert "| step | lever" in (tmp_path / "ladder.md").read_text().replace("  ", " ").replace("  ", " ")


def test_an_only_filter_that_matches_nothing_is_refused(tmp_path, capsys):
    argv = ["--grid", str(REPO_ROOT / "inference/grids/qwen-image.json"), "--csv", str(tmp_path / "x.csv"),
            "--only", "lader_step"]  # a typo
    with pytest.raises(SystemExit) as stopped:
        sweep.main(argv)
    assert stopped.value.code == 2 and "matches none of the 6 configurations" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
