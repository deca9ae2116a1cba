"""The scripts' logging: one format, and the third-party warnings known to be harmless for this suite kept out of
it (each with the reason it is harmless). Every other warning still shows."""

import logging

KNOWN_HARMLESS = (
    # torchao's CUDA-only extensions (CUTLASS fp8/fp4 kernels, MXFP8) on a machine without them; nothing we run
    # needs them there
    ("torchao", "Failed to load"),
    # the int8 Triton kernels only run on CUDA; on the CPU torchao uses its own fallbacks
    ("torchao.kernel.intmm", "Detected no triton"),
    # torchao 0.18 registers its enums the old way; a deprecation notice addressed to torchao
    ("torch.utils._pytree", "is an Enum subclass"),
    # diffusers looks for layout classes torchao 0.18 removed; our checkpoints use the new tensor subclasses, whose
    # save/load round trip the serialization tests check
    ("diffusers.quantizers.torchao.torchao_quantizer", "Unable to import `torchao` Tensor objects"),
    # image processors of pipelines this suite never builds
    ("transformers.utils.import_utils", "requires torchvision"),
)


class DropMessages(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def setup_logging() -> None:
    """INFO and up, one line each; call it first in a script's main(), before torchao or diffusers is imported."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name, text in KNOWN_HARMLESS:
        logging.getLogger(name).addFilter(DropMessages(text))
