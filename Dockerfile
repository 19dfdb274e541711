# augsvc in one image: the augmentation service (default command) and the trainer.
# Slim Python, pinned dependencies, WordNet and GloVe inside, a non-root user, a gRPC health check.
#   docker build -t augsvc .                                   (CPU torch)
#   docker build -t augsvc:gpu --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NO_ALBUMENTATIONS_UPDATE=1

# WordNet 3.0 for the synonym transform (Debian ships it; no NLTK download at run time).
RUN apt-get update \
 && apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# torch first, from the index the build asks for (the CPU wheel by default, not GBs of CUDA),
# then the pinned set; torch==2.13.0 is already satisfied by then.
COPY requirements.lock ./
RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX}" \
 && pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY augsvc ./augsvc
COPY training ./training
COPY configs ./configs
RUN pip install --no-deps . \
 && useradd --create-home --uid 10001 augsvc \
 && mkdir -p /data /runs && chown augsvc:augsvc /data /runs

USER augsvc
# Build the compact WordNet cache once, so a new container answers at once.
RUN python -c "from augsvc.text.wordnet import load_wordnet; load_wordnet()"

EXPOSE 50051 9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["augsvc", "health", "127.0.0.1:50051"]
CMD ["augsvc", "serve", "--host", "0.0.0.0", "--port", "50051"]
