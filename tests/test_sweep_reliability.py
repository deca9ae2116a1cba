"""inference/sweep.py's reliability: its configuration process dies with it, one sweep per CSV, Ctrl-C recorded as
`interrupted`, bad grid files and flags refused before anything runs, resume matched on what a command runs."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import utils.sweep
import utils.sweep_processes
from inference import sweep
from tests.conftest import REPO_ROOT
from utils.results import append_row, read_rows

TINY = ["--script", "inference/benchmark_image.py", "--set", "ckpt_id=tiny-flux", "--set", "device=cpu",
        "--set", "warmup=1"]
SLOW = [*TINY, "--set", "runs=1000000"]  # a configuration that runs until it is killed


def process_state(pid: int) -> str | None:
    """The state letter in /proc (Z: exited, not yet reaped), or None when the process is gone."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def is_dead(pid: int) -> bool:
    return process_state(pid) in (None, "Z")


def configuration_processes(sweep_pid: int) -> list[int]:
    """The sweep's children that run a benchmark (not, say, the one that checks the configurations first)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                command = open(f"/proc/{entry}/cmdline").read().split("\0")
            except (FileNotFoundError, ProcessLookupError):
                continue
            benchmark = str(REPO_ROOT / "inference/benchmark_image.py")
            if int(stat.rsplit(")", 1)[1].split()[1]) == sweep_pid and benchmark in command:
                found.append(int(entry))
    return found


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def start_sweep(tmp_path):
    """Starts `inference/sweep.py` in its own process (temp folder under tmp_path); returns (sweep, its
    configuration process's pid); kills both, by pid, if a test leaves them running."""
    started = []

    def start(*flags):
        (tmp_path / "tmp").mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(REPO_ROOT)}
        with open(tmp_path / "sweep.err", "w") as err:
            process = subprocess.Popen([sys.executable, "inference/sweep.py", *flags], cwd=REPO_ROOT, env=env,
                                       stdout=subprocess.DEVNULL, stderr=err)
        started.append(process.pid)

        def child():
            if process.poll() is not None:
                pytest.fail(f"the sweep exited with {process.returncode}: {(tmp_path / 'sweep.err').read_text()}")
            return configuration_processes(process.pid)

        started.append(wait_until(child, 120, "the sweep's configuration process")[0])
        return process, started[-1]

    yield start
    for pid in started:
        if not is_dead(pid):
            os.kill(pid, signal.SIGKILL)


def our_temp_folders(tmp_path) -> list[str]:
    return [path.name for path in (tmp_path / "tmp").glob("sweep-compile-caches-*")]


def test_kill_9_of_the_sweep_kills_its_configuration_process(tmp_path, start_sweep, monkeypatch):
    csv = tmp_path / "r.csv"
    process, child = start_sweep(*SLOW, "--csv", str(csv))
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    wait_until(lambda: is_dead(child), 10, "the configuration process to die with its sweep")
    assert our_temp_folders(tmp_path)  # SIGKILL leaves the compile caches' folder ...
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    assert sweep.main([*TINY, "--set", "runs=1", "--csv", str(csv)]) == 0
    assert not our_temp_folders(tmp_path)  # ... which the next sweep on the CSV removes
    assert list(read_rows(csv).status) == ["ok"] and not (tmp_path / "r.csv.sweep.lock").exists()


def test_a_second_sweep_on_the_same_csv_is_refused(tmp_path, start_sweep, monkeypatch, capsys):
    csv = tmp_path / "r.csv"
    process, child = start_sweep(*SLOW, "--csv", str(csv))
    monkeypatch.setattr(utils.sweep_processes, "LOCK_WAIT_S", 0.5)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main([*SLOW, "--csv", str(csv), "--timeout", "5"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "another sweep on" in err
    assert not csv.exists()
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(60) == 130


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_records_the_running_configuration_as_interrupted(tmp_path, start_sweep, signum):
    csv = tmp_path / "r.csv"
    process, child = start_sweep(*SLOW, "--vary", "seed=1,2", "--csv", str(csv))
    os.kill(process.pid, signum)
    assert process.wait(60) == 130
    assert is_dead(child) and not our_temp_folders(tmp_path) and not (tmp_path / "r.csv.sweep.lock").exists()
    [row] = read_rows(csv).itertuples()  # the second configuration never started
    assert (row.status, row.model, row.seed, row.runs, row.device) == ("interrupted", "tiny-flux", 1, 1000000, "cpu")
    assert "--seed 1" in row.command and "interrupted" in row.error
    assert len(list((tmp_path / "logs" / "r").iterdir())) == 1  # no log for the one that never started


def bad_input(capfd, argv) -> str:
    """The one line `argv` is refused with (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(argv)
    err = capfd.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    return err


def grid_file(tmp_path, text: str, suffix: str = ".json"):
    path = tmp_path / f"grid{suffix}"
    path.write_text(text)
    return str(path)


def assert_nothing_written(tmp_path):
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith("grid")) == []


SPEC = {"script": "inference/benchmark_image.py", "fixed": {"ckpt_id": "tiny-flux", "device": "cpu"}}


@pytest.mark.parametrize("text, suffix, message", [
    (json.dumps({**SPEC, "grid": {"quantization": "None"}}), ".json", "grid key 'quantization' must be a non-empty"),
    (json.dumps({**SPEC, "grids": {"seed": [1]}}), ".json", "unknown key 'grids'; known keys: description, script"),
    (json.dumps({**SPEC, "grid": {"seed": [1]}, "configs": [{"set": {}}]}), ".json", "not grid and configs"),
    ('{"script": "inference/benchmark_image.py",', ".json", "not valid JSON"),
    ("script: [inference/benchmark_image.py\n", ".yaml", "not valid YAML"),
    (json.dumps([SPEC]), ".json", "expected a mapping"),
    (json.dumps({**SPEC, "ladder": []}), ".json", "ladder is empty"),
    (json.dumps({}), ".json", "names no script"),
    ("", ".yaml", "expected a mapping"),
    (json.dumps({**SPEC, "ladder": [{"lever": "a", "set": {}}, {"lever": "b", "base": "x", "set": {}}]}), ".json",
     "base must be an earlier step"),
    (json.dumps({**SPEC, "configs": [{"name": "a", "set": ["seed", 1]}]}), ".json", "'set' must be a mapping"),
    (json.dumps({**SPEC, "grid": {"seed": [1]}, "when": [{"if": "seed", "set": {}}]}), ".json",
     "'if' must be a mapping"),
    (json.dumps({**SPEC, "grid": {"seed": [1]}, "when": [{"if": {"quantisation": "None"}, "set": {"runs": 2}}]}),
     ".json", "when rule 1: its if names 'quantisation', which is no flag"),
    (json.dumps({**SPEC, "grid": {"seed": [1]}, "when": [{"if": {"--seed": 1}, "set": {"runs": 2}}]}),
     ".json", "write flags without dashes"),
    (json.dumps({**SPEC, "grid": {"seed": [1]}, "timeout_s": 0}), ".json", "timeout_s must be a positive"),
    (json.dumps({**SPEC, "fixed": {"csv": "elsewhere.csv"}, "grid": {"seed": [1]}}), ".json", "fixed sets 'csv'"),
    (json.dumps({**SPEC, "configs": [{"name": "a", "set": {"seed": 1}}, {"name": "b", "set": {"seed": 1}}]}),
     ".json", "two configs entries set the same flags"),
])
def test_bad_grid_files_are_refused_in_one_line(tmp_path, capfd, text, suffix, message):
    err = bad_input(capfd, ["--grid", grid_file(tmp_path, text, suffix), "--csv", str(tmp_path / "r.csv"),
                             "--dry-run"])
    assert message in err
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("flags, message", [
    (["--grid", "inference/grids/flux-dev.json", *TINY[:2]], "not both"),
    (["--grid", "inference/grids/cogvideox-latency.json", "--vary", "seed=1,2"], "--vary crosses a grid"),
    ([*TINY, "--vary", "quantisation=None,int8wo"], "configuration 1 of the 2 to run"),
    ([*TINY, "--vary", "quantization=None,int8w0"], "configuration 2 of the 2 to run"),
    ([*TINY, "--set", "seed=one"], "invalid seed value: 'one'"),
    ([*TINY, "--set", "compile=yes"], "unrecognized arguments: yes"),
    ([*TINY, "--vary", "seed=1", "--vary", "seed=2"], "--vary seed given twice"),
    ([*TINY, "--set", "seed=1", "--set", "seed=2"], "--set seed given twice"),
    ([*TINY, "--vary", "model_id=tiny-flux,tiny-qwen-image"], "--set ckpt_id and --vary model_id: give the flag one"),
    ([*TINY, "--set", "fuse_qkv=true", "--set", "fuse_attn_projections=true"],
     "--set fuse_qkv and --set fuse_attn_projections set the same flag"),
    (["--script", "README.md"], "no such script"),
])
def test_bad_flags_are_refused_before_any_configuration_runs(tmp_path, capfd, flags, message):
    err = bad_input(capfd, [*flags, "--csv", str(tmp_path / "r.csv"), "--dry-run"])
    assert message in err
    assert_nothing_written(tmp_path)


def test_a_configuration_this_machine_cannot_run_is_refused_before_any_runs(tmp_path, capfd):
    """fp8 needs a recent GPU: the script's own checks (run before the sweep starts) refuse it on the CPU."""
    err = bad_input(capfd, [*TINY, "--vary", "quantization=None,fp8dqrow", "--csv", str(tmp_path / "r.csv")])
    assert "configuration 2 of the 2 to run" in err and "--quantization fp8dqrow" in err
    assert_nothing_written(tmp_path)


def test_a_dry_run_notes_what_this_machine_would_refuse_and_a_finished_configuration_is_not_checked(tmp_path, capsys):
    csv = tmp_path / "r.csv"
    argv = [*TINY, "--vary", "quantization=None,fp8dqrow", "--csv", str(csv)]
    assert sweep.main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "note: run here, the sweep would stop before starting anything: configuration 2 of the 2 to run" in out
    assert "--quantization fp8dqrow" in out.splitlines()[-1]
    assert_nothing_written(tmp_path)
    spec = {**SPEC, "fixed": {"ckpt_id": "tiny-flux", "device": "cpu", "warmup": "1"}, "grid": {"quantization":
                                                                                               ["fp8dqrow"]}}
    append_row(csv, ok_row(utils.sweep.expand(spec)[0].command()))  # measured on a GPU, resumed on this CPU
    assert sweep.main([*TINY, "--vary", "quantization=fp8dqrow", "--csv", str(csv)]) == 0
    assert "1 configuration, 1 already ok" in capsys.readouterr().out


def ok_row(command: str):
    config = utils.sweep.Config("inference/benchmark_image.py", (("ckpt_id", "tiny-flux"),))
    row = utils.sweep.failure_row(config, "ok", "")
    row.command = command
    return row


def test_resume_matches_what_a_command_runs_not_its_spelling(tmp_path, capsys):
    csv = tmp_path / "r.csv"
    spec = {**SPEC, "grid": {"quantization": ["None", "int8wo"], "seed": ["1", "2"]}, "fixed": {
        "ckpt_id": "tiny-flux", "device": "cpu", "warmup": "1"}}
    for config in utils.sweep.expand(spec):  # the rows of --vary quantization=... --vary seed=...
        append_row(csv, ok_row(config.command()))
    swapped = [*TINY, "--vary", "seed=1,2", "--vary", "quantization=None,int8wo", "--csv", str(csv)]
    assert sweep.main([*swapped, "--dry-run"]) == 0
    assert "4 configurations, 4 already ok" in capsys.readouterr().out
    assert sweep.main(swapped) == 0 and len(read_rows(csv)) == 4  # nothing ran


def test_old_rows_count_as_done_however_their_command_is_spelled(tmp_path, capsys):
    csv = tmp_path / "r.csv"
    for command in ["python inference/benchmark_image.py --seed 2 --model_id tiny-flux --device cpu --warmup 1 "
                    "--weights auto --csv results/old.csv",  # an alias, another order, a default spelled out
                    "python inference/benchmark_image.py --a_flag_since_removed --seed 3",  # kept by its text
                    "python inference/benchmark_video.py --seed 4 --device cpu"]:  # another script
        append_row(csv, ok_row(command))
    assert sweep.main([*TINY, "--vary", "seed=2,3,4", "--csv", str(csv), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 configurations, 1 already ok" in out and "skip  python inference/benchmark_image.py" in out


def test_a_temp_folder_without_our_marker_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    csv = tmp_path / "r.csv"
    with utils.sweep_processes.compile_cache_root(csv) as ours:
        pass
    foreign = tmp_path / ours.name
    (foreign / "theirs").mkdir(parents=True)
    with utils.sweep_processes.compile_cache_root(csv) as second:
        assert second != foreign and second.is_dir()
    assert (foreign / "theirs").is_dir() and not second.exists()


def test_a_log_dir_that_is_a_file_is_refused(tmp_path, capfd):
    (tmp_path / "logs").write_text("mine")
    argv = ["--script", "inference/benchmark_image.py", "--set", "device=cpu", "--vary", "seed=1",
            "--csv", str(tmp_path / "r.csv"), "--log_dir", str(tmp_path / "logs"), "--dry-run"]
    assert "is a file" in bad_input(capfd, argv) and (tmp_path / "logs").read_text() == "mine"


def test_a_user_file_named_like_the_lock_is_kept(tmp_path):
    csv = tmp_path / "r.csv"
    user_file = tmp_path / "r.csv.sweep.lock"
    user_file.write_text("my notes")
    with utils.sweep_processes.csv_lock(csv):
        pass
    assert user_file.read_text() == "my notes"
    user_file.unlink()
    with utils.sweep_processes.csv_lock(csv):
        assert user_file.exists()
    assert not user_file.exists()  # the lock file it made itself is gone


WAITS_FOR_A_STOP = """import sys, time
from utils.errors import Stopped, stop_signals_raise
with stop_signals_raise():
    try:
        print("ready", flush=True)
        time.sleep(60)
    except Stopped as stopped:
        open(sys.argv[1], "w").write(str(stopped))
"""
IGNORES_STOPS = """import signal, time
for number in (signal.SIGTERM, signal.SIGUSR1):
    signal.signal(number, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def start_child(children, script: str, *args: str) -> subprocess.Popen:
    process = children.start([sys.executable, "-c", script, *args], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert process.stdout.readline() == b"ready\n"  # its handlers are in place
    return process


def test_a_configuration_out_of_time_is_told_so_and_can_record_it(tmp_path):
    children = utils.sweep_processes.Children()
    process = start_child(children, WAITS_FOR_A_STOP, str(tmp_path / "stopped"))
    assert children.wait(process, 0.5) is None and process.returncode == 0
    assert (tmp_path / "stopped").read_text() == "SIGUSR1 (timeout: the sweep ran out of time for it)"


def test_a_stopped_sweep_tells_its_configurations_and_kills_one_that_does_not_exit(tmp_path, monkeypatch):
    monkeypatch.setattr(utils.sweep_processes, "STOP_GRACE_S", 0.5)
    children = utils.sweep_processes.Children()
    polite = start_child(children, WAITS_FOR_A_STOP, str(tmp_path / "stopped"))
    deaf = start_child(children, IGNORES_STOPS)
    children.stop()
    assert polite.wait(5) == 0 and deaf.wait(5) == -signal.SIGKILL
    assert (tmp_path / "stopped").read_text() == ("SIGTERM (interrupted: stopped by its sweep, its parent script or "
                                                   "by hand)")
    assert children.start([sys.executable, "-c", "pass"]) is None  # none starts after a stop
