# idsvc container image: the API (default), or any idsvc command (`docker run IMAGE publish ...`).
# Pinned base (exact Python and Debian release); rebuild monthly for Debian security fixes.
# Build: docker build -t idsvc:0.1.0 .
FROM python:3.11.7-slim-bookworm AS build
# pyscard is compiled against PC/SC; everything else installs from wheels.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libpcsclite-dev swig \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements.lock ./
RUN python -m venv /opt/idsvc \
 && /opt/idsvc/bin/pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY idsvc ./idsvc
COPY cardio ./cardio
COPY keys ./keys
COPY mobile_api ./mobile_api
RUN /opt/idsvc/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11.7-slim-bookworm
# Runtime libraries only: PC/SC client library for pyscard, fonts for the card face.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcsclite1 fonts-noto-core libraqm0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 idsvc \
 && useradd --system --uid 10001 --gid idsvc --home-dir /var/lib/idsvc --shell /usr/sbin/nologin idsvc \
 && install -d -o idsvc -g idsvc -m 0700 /var/lib/idsvc
COPY --from=build /opt/idsvc /opt/idsvc
ENV PATH=/opt/idsvc/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IDSVC_HOME=/var/lib/idsvc
USER 10001:10001
WORKDIR /var/lib/idsvc
VOLUME ["/var/lib/idsvc"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
ENTRYPOINT ["idsvc"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
