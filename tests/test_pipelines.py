import logging

import torch

from utils.pipelines import build_pipeline, load_pretrained_pipeline, resolve_weights


def parameters_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def generate(pipe):
    return pipe("a dog", num_inference_steps=2, height=64, width=64, max_sequence_length=32, output_type="np",
                generator=torch.Generator().manual_seed(0)).images


def test_random_weights_are_deterministic_for_a_seed(tiny_pipe):
    again = build_pipeline("tiny-flux", "random", "cpu", torch.bfloat16, seed=0)
    other = build_pipeline("tiny-flux", "random", "cpu", torch.bfloat16, seed=1)
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        assert parameters_equal(getattr(tiny_pipe, name), getattr(again, name)), name
        assert not parameters_equal(getattr(tiny_pipe, name), getattr(other, name)), name


def test_random_weights_are_created_in_the_target_dtype(tiny_pipe):
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        assert {p.dtype for p in getattr(tiny_pipe, name).parameters()} == {torch.bfloat16}, name


def test_pipeline_output_shape(tiny_pipe):
    images = tiny_pipe(["a dog"] * 2, num_inference_steps=2, height=64, width=48, max_sequence_length=32,
                       output_type="np").images
    assert images.shape == (2, 64, 48, 3)


def test_pretrained_path_loads_a_saved_checkpoint(tiny_pipe, tmp_path):
    tiny_pipe.save_pretrained(tmp_path / "ckpt")
    loaded = load_pretrained_pipeline(str(tmp_path / "ckpt"), "cpu", torch.bfloat16)
    assert parameters_equal(loaded.transformer, tiny_pipe.transformer)
    assert (generate(loaded) == generate(tiny_pipe)).all()


def test_auto_weights(tmp_path, caplog):
    (tmp_path / "local").mkdir()
    assert resolve_weights(str(tmp_path / "local"), "auto") == "pretrained"
    assert resolve_weights("tiny-flux", "auto") == "random"
    with caplog.at_level(logging.WARNING):
        assert resolve_weights("black-forest-labs/FLUX.1-dev", "auto") == "random"  # HF_HUB_OFFLINE=1, not cached
    assert "random weights" in caplog.text and "HF_HUB_OFFLINE" in caplog.text
    assert resolve_weights("black-forest-labs/FLUX.1-dev", "pretrained") == "pretrained"
