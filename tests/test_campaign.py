"""utils.campaign: campaign ids, the host and GPU index, and how a run's compile caches started."""

import re

import pytest

from utils import campaign


def test_a_run_on_its_own_gets_one_fresh_campaign_and_a_sweep_passes_its_own(monkeypatch):
    monkeypatch.delenv(campaign.CAMPAIGN_ENV, raising=False)
    own = campaign.campaign_id()
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{4}", own) and campaign.campaign_id() == own
    monkeypatch.setenv(campaign.CAMPAIGN_ENV, "20261206T105304Z-3fa1")
    assert campaign.campaign_id() == "20261206T105304Z-3fa1"


def test_host_id_is_stable_and_can_be_named(monkeypatch):
    campaign.host_id.cache_clear()
    first = campaign.host_id()
    campaign.host_id.cache_clear()
    assert campaign.host_id() == first and re.fullmatch(r"[0-9a-f]{8}", first)
    monkeypatch.setenv(campaign.HOST_ENV, "lab-h100-2")
    campaign.host_id.cache_clear()
    assert campaign.host_id() == "lab-h100-2"
    campaign.host_id.cache_clear()


@pytest.mark.parametrize("visible, device, index", [(None, "cuda", "0"), (None, "cuda:1", "1"), ("3", "cuda", "3"),
                                                    ("2,5", "cuda:1", "5"), ("GPU-ab12", "cuda:0", "GPU-ab12"),
                                                    (None, "cpu", "")])
def test_gpu_index_is_the_physical_one(monkeypatch, visible, device, index):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert campaign.gpu_index(device) == index


def test_compile_start_says_cold_only_when_both_caches_were_empty(tmp_path, monkeypatch):
    inductor, triton = tmp_path / "inductor", tmp_path / "triton"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(inductor))
    monkeypatch.setenv("TRITON_CACHE_DIR", str(triton))
    states = []
    steps = (lambda: None, lambda: inductor.mkdir(exist_ok=True), lambda: (triton.mkdir(), (triton / "kernel").touch()))
    for setup in steps:
        setup()
        campaign.caches_at_launch.cache_clear()
        states.append(campaign.compile_start(True))
    assert states == ["cold", "cold", "shared"]
    assert campaign.compile_start(False) == ""  # nothing compiled
    assert campaign.compile_start(True, loaded_cache=True) == "warm"
    (triton / "kernel").unlink()
    campaign.caches_at_launch.cache_clear()
    assert campaign.compile_start(True, first_in_process=False) == "shared"  # after another compile in the process
    campaign.caches_at_launch.cache_clear()
