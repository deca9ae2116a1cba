# GPU image: the official PyTorch CUDA image (devel: torch.compile's Triton needs a C compiler) + our requirements.
#   docker build --build-arg GIT_SHA=$(git describe --always --dirty) -t diffusion-bench .
#   (.git stays out of the image, so GIT_SHA is what every row's git_sha column records)
#   docker run --gpus all --rm -v $HOME/.cache/huggingface:/root/.cache/huggingface -v $PWD/results:/workspace/suite/results \
#       diffusion-bench --ckpt_id black-forest-labs/FLUX.1-dev --quantization fp8dqrow --compile
ARG BASE_IMAGE=pytorch/pytorch:2.11.0-cuda12.8-cudnn9-devel
FROM ${BASE_IMAGE}
WORKDIR /workspace/suite
COPY requirements.txt constraints-gpu.txt ./
# torch comes from the base image (it satisfies torch>=2.11); the rest at the versions the GPU results ran with.
RUN python -m pip install --no-cache-dir -r requirements.txt -c constraints-gpu.txt
COPY . .
RUN python -m pip install --no-cache-dir --no-deps -e .
ARG GIT_SHA=""
ENV BENCH_GIT_SHA=${GIT_SHA}
ENTRYPOINT ["python", "inference/benchmark_image.py"]
