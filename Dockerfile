# Image for the API and the workers of the scaled-out deployment (compose.yaml).
FROM python:3.11-slim-bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      tesseract-ocr tesseract-ocr-vie tesseract-ocr-osd poppler-utils fonts-dejavu-core fonts-noto-core npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
ENV SOHOA_TESSDATA_DIR=/opt/sohoa/tessdata
RUN bash scripts/setup.sh
ENV PATH=/app/.venv/bin:$PATH
EXPOSE 8000
CMD ["sohoa", "serve", "--host", "0.0.0.0"]
