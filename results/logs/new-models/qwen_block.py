"""Which call of a compiled fp8dqrow Qwen-Image block fails (session 4): one real-size block, text of 16 then 6
tokens (the default prompt, then the negative " "), image 83x83 (1328^2) patches; with and without the text
stream in fp8 weight-only."""
import sys
import torch
from utils.pipelines import build_random_component
from utils.presets import get_preset
from utils.quant import apply_quantization

device = sys.argv[1] if len(sys.argv) > 1 else "cuda"
preset = get_preset("Qwen/Qwen-Image" if device == "cuda" else "tiny-qwen-image")
config = {**preset.config("transformer"), "num_layers": 1}
side = 83 if device == "cuda" else 4
for few_rows in (None, preset.few_rows_layers):
    for image_side in (side, side + 1):
        torch._dynamo.reset()
        model = build_random_component("QwenImageTransformer2DModel", config, device, torch.bfloat16, seed=0)
        apply_quantization(model, "fp8dqrow" if device == "cuda" else "int8dq", few_rows_pattern=few_rows)
        model.transformer_blocks[0].compile()
        for text in (16, 6):
            g = torch.Generator(device).manual_seed(0)
            try:
                with torch.no_grad():
                    out = model(hidden_states=torch.randn(1, image_side ** 2, config["in_channels"], device=device,
                                                          generator=g, dtype=torch.bfloat16),
                                timestep=torch.tensor([0.5], device=device),
                                encoder_hidden_states=torch.randn(1, text, config["joint_attention_dim"], device=device,
                                                                  generator=g, dtype=torch.bfloat16),
                                encoder_hidden_states_mask=torch.ones(1, text, device=device),
                                img_shapes=[(1, image_side, image_side)], return_dict=False)[0]
                torch.cuda.synchronize() if device == "cuda" else None
                result = f"ok {tuple(out.shape)}"
            except Exception as error:  # noqa: BLE001
                result = type(error).__name__ + ": " + str(error).split("\n")[0][:90]
            print(f"text stream weight-only={few_rows is not None} image {image_side}^2 text {text}: {result}",
                  flush=True)
