"""Appending to results CSVs: damaged files are repaired (a missing last newline) or refused with one line naming the
file and the line, modes survive, concurrent writers keep whole rows, and a finished row is never lost."""

import csv
import logging
import multiprocessing
import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

from utils import results
from utils.errors import UsageError
from utils.files import atomic_path
from utils.results import COLUMNS, CsvError, Row, TrainRow, append_row, read_rows

OLD_HEADER = "timestamp,git_sha,command,model,quantization,time_median_s,status"  # one append_row migrates


def skip_unless_permissions_apply(tmp_path):
    """Root (with its usual capabilities) writes whatever the permission bits say."""
    probe = tmp_path / "probe"
    probe.touch()
    probe.chmod(0o444)
    try:
        open(probe, "a").close()
    except PermissionError:
        return
    pytest.skip("this user writes read-only files (root)")


def whole_csv(path, rows: int = 1) -> str:
    for index in range(rows):
        append_row(path, Row(model=f"m{index}", time_median_s=1.0 + index))
    return path.read_text()


def assert_one_line(error, *words):
    text = str(error)
    assert "\n" not in text and all(word in text for word in words), text


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_last_newline_is_added_before_the_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(whole_csv(path).rstrip("\r\n"))
    append_row(path, Row(model="next", time_median_s=2.0))
    frame = read_rows(path)
    assert list(frame.model) == ["m0", "next"] and list(frame.time_median_s) == [1.0, 2.0]


def test_a_cut_short_last_row_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "r.csv"
    text = whole_csv(path, 2)
    damaged = text[:len(text) - len(text.splitlines()[-1]) // 2 - 2]  # a writer killed halfway through row 2
    path.write_text(damaged)
    with pytest.raises(CsvError) as error:
        append_row(path, Row(model="next"))
    assert_one_line(error.value, str(path), "line 3", "cut short")
    assert path.read_text() == damaged
    with pytest.raises(CsvError, match="line 3"):
        read_rows(path)


def test_a_cut_short_quoted_field_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(whole_csv(path) + results.format_csv_line(Row(model="m", prompt="a, b"))[:-20])
    with pytest.raises(CsvError) as error:
        append_row(path, Row())
    assert_one_line(error.value, "line 3", "cut short")


def test_ragged_rows_are_refused(tmp_path):
    path = tmp_path / "r.csv"
    lines = whole_csv(path, 3).splitlines()
    path.write_text("\n".join([lines[0], lines[1] + lines[2], lines[3]]) + "\n")  # two rows glued into one line
    for call in (lambda: append_row(path, Row()), lambda: read_rows(path)):
        with pytest.raises(CsvError) as error:
            call()
        assert_one_line(error.value, str(path), "line 2", "does not match the header")


@pytest.mark.parametrize("data, problem", [(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
                                           (b"model,status\nm\xe9,ok\n", "not UTF-8")])
def test_binary_and_undecodable_files_are_refused(tmp_path, data, problem):
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    with pytest.raises(CsvError) as error:
        append_row(path, Row())
    assert_one_line(error.value, str(path), problem)
    assert path.read_bytes() == data


@pytest.mark.parametrize("text", ["name,age\nbob,3\n", "hello world\n", "model,colour\nm,red\n",
                                  "model,status\nmine,ok\n"])  # the last: every column is one of ours
def test_foreign_csvs_are_refused(tmp_path, text):
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(CsvError) as error:
        append_row(path, Row())
    assert_one_line(error.value, str(path), "line 1", "not one of our results CSVs")
    assert path.read_text() == text


def test_rows_of_another_kind_are_refused(tmp_path):
    path = tmp_path / "train.csv"
    append_row(path, TrainRow(model="m"))
    with pytest.raises(CsvError) as error:
        append_row(path, Row(model="m"))
    assert_one_line(error.value, "holds training rows, not benchmark rows")


def test_migration_keeps_the_mode(tmp_path):
    for kept in (0o644, 0o640):
        path = tmp_path / f"old-{kept:o}.csv"
        path.write_text(f"{OLD_HEADER}\n2025-01-01,abc,python x,m,int8wo,1.5,ok\n")
        path.chmod(kept)
        with umask(0o077):  # the file's own mode wins over the umask
            append_row(path, Row(model="n"))
        assert path.read_text().splitlines()[0] == ",".join(COLUMNS) and mode(path) == kept


def test_new_atomic_files_follow_the_umask(tmp_path):
    for mask, expected in ((0o022, 0o644), (0o027, 0o640)):
        path = tmp_path / f"new-{mask:o}.md"
        with umask(mask), atomic_path(path) as partial:
            partial.write_text("x")
        assert mode(path) == expected


def _append_rows(path, worker: int):
    for index in range(20):
        append_row(path, Row(model=f"w{worker}", seed=index, prompt="x" * 3000))


@pytest.mark.parametrize("schema", ["today's", "older"])
def test_concurrent_appends_to_a_file_without_a_last_newline(tmp_path, schema):
    """Four writers at once: the first repairs the newline (or migrates the older file) under the lock, every row
    stays whole."""
    path = tmp_path / "r.csv"
    if schema == "older":
        path.write_text(f"{OLD_HEADER}\n2025-01-01,abc,python x,old,int8wo,1.5,ok")
    else:
        append_row(path, Row(model="old", time_median_s=1.5))
        path.write_text(path.read_text().rstrip("\r\n"))
    workers = [multiprocessing.Process(target=_append_rows, args=(path, worker)) for worker in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(worker.exitcode == 0 for worker in workers)
    frame = read_rows(path)
    assert len(frame) == 81 and frame.model.iloc[0] == "old"
    new = frame.iloc[1:]
    assert (new.prompt.str.len() == 3000).all()
    assert all(sorted(seeds) == list(range(20)) for seeds in new.groupby("model").seed.apply(list))


def test_check_csv_target_accepts_good_targets_and_creates_nothing(tmp_path):
    results.check_csv_target(tmp_path / "new" / "deeper" / "r.csv", Row)
    assert not (tmp_path / "new").exists()
    old = tmp_path / "old.csv"
    old.write_text(f"{OLD_HEADER}\n2025-01-01,abc,python x,m,int8wo,1.5,ok\n")
    results.check_csv_target(old, Row)
    empty = tmp_path / "empty.csv"
    empty.touch()
    results.check_csv_target(empty, Row)
    train = tmp_path / "train.csv"
    append_row(train, TrainRow())
    results.check_csv_target(train, TrainRow)


def test_check_csv_target_refuses_with_one_line(tmp_path):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "foreign.csv").write_text("name,age\nbob,3\n")
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02")
    (tmp_path / "cut.csv").write_text(whole_csv(tmp_path / "cut.csv")[:-30])
    append_row(tmp_path / "train.csv", TrainRow())
    cases = {tmp_path: "is a directory", tmp_path / "a-file" / "sub" / "r.csv": "is not a directory",
             tmp_path / "foreign.csv": "columns this version does not know", tmp_path / "binary.csv": "binary",
             tmp_path / "cut.csv": "cut short", tmp_path / "train.csv": "holds training rows"}
    for path, problem in cases.items():
        with pytest.raises(UsageError) as error:
            results.check_csv_target(path, Row)
        assert_one_line(error.value, str(path), problem)


def test_check_csv_target_refuses_unwritable_folders_and_files(tmp_path):
    skip_unless_permissions_apply(tmp_path)
    folder = tmp_path / "locked"
    folder.mkdir()
    existing = folder / "r.csv"
    whole_csv(existing)
    existing.chmod(0o444)
    folder.chmod(0o555)
    try:
        for path, problem in ((folder / "new.csv", "cannot write in"), (folder / "sub" / "r.csv", "cannot write in"),
                              (existing, "read and write")):
            with pytest.raises(UsageError) as error:
                results.check_csv_target(path, Row)
            assert_one_line(error.value, problem)
    finally:
        folder.chmod(0o755)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_check_csv_target_tries_the_folder_instead_of_trusting_access():
    """access() tells root that /proc is writable; only making a file there says no."""
    with pytest.raises(UsageError) as error:
        results.check_csv_target(Path("/proc/x.csv"), Row)
    assert_one_line(error.value, "/proc/x.csv", "cannot write in /proc")


def test_a_row_that_cannot_be_appended_is_saved_aside(tmp_path, monkeypatch, caplog):
    def read_only(path, row):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(results, "append_row", read_only)
    with caplog.at_level(logging.WARNING, logger="utils.results"):
        saved = results.append_row_or_save_aside(tmp_path / "r.csv", Row(model="kept", time_median_s=1.25))
    assert saved.parent == tmp_path and saved.name.startswith("r.unsaved-") and saved.suffix == ".csv"
    assert list(read_rows(saved).model) == ["kept"] and read_rows(saved).time_median_s[0] == 1.25
    assert str(saved) in caplog.text and "Permission denied" in caplog.text


def test_a_read_only_target_falls_back_to_a_side_file(tmp_path):
    skip_unless_permissions_apply(tmp_path)
    path = tmp_path / "r.csv"
    whole_csv(path)
    path.chmod(0o444)
    saved = results.append_row_or_save_aside(path, Row(model="kept"))
    assert saved != path and list(read_rows(saved).model) == ["kept"] and len(read_rows(path)) == 1


def test_a_damaged_or_impossible_target_falls_back_too(tmp_path, monkeypatch):
    damaged = tmp_path / "damaged.csv"
    damaged.write_text("name,age\nbob,3\n")
    saved = results.append_row_or_save_aside(damaged, Row(model="kept"))
    assert saved.parent == tmp_path and list(read_rows(saved).model) == ["kept"]
    assert damaged.read_text() == "name,age\nbob,3\n"
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    impossible = tmp_path / "a-file" / "r.csv"  # its folder cannot exist: the row goes to the current folder
    saved = results.append_row_or_save_aside(impossible, Row(model="kept"))
    assert saved.parent == tmp_path / "cwd" and list(read_rows(saved).model) == ["kept"]
    assert results.append_row_or_save_aside(tmp_path / "ok.csv", Row(model="fine")) == tmp_path / "ok.csv"


def test_a_failed_append_takes_its_partial_row_back(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    append_row(path, Row(model="kept", time_median_s=1.0))
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        append_row(path, Row(model="lost", time_median_s=2.0))
    assert path.read_bytes() == before


def test_numbers_that_are_not_numbers_are_refused(tmp_path):
    path = tmp_path / "r.csv"
    append_row(path, Row(model="m", time_median_s=1.0))
    header, line = path.read_text().splitlines()
    cells = next(csv.reader([line]))
    cells[header.split(",").index("time_median_s")] = "fast"
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows([header.split(","), cells])
    with pytest.raises(CsvError) as error:
        results.read_rows(path)
    assert_one_line(error.value, "line 2", "time_median_s holds 'fast'")
