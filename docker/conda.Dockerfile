# One image per audiomatrix conda cell: the conda part of its lock installed by micromamba from
# the explicit list rendered from environments/<cell>/conda-lock.yml (URLs with their MD5s: no
# solve), then its pip part by the environment's own pip (hashes required, no dependencies),
# into one conda environment at /opt/conda; the smoke suite, audiomatrix.compat, a non-root user,
# labelled as docker/Dockerfile labels a uv cell's image. `audiomatrix build` drives it; by hand,
# from the repository root once `audiomatrix lock` has locked the cell:
#
#   docker build -f docker/conda.Dockerfile \
#     --build-arg CONDA_LOCK=environments/<cell>/conda-linux-64.lock \
#     --build-arg PIP_LOCK=environments/<cell>/pip-linux-64.txt -t cell .
#
# The packages come from the URLs in the lock (the channel's and PyPI's), so a build reaches
# both. Behind a TLS-intercepting proxy, pass CA_URL as for docker/Dockerfile: conda-install.sh fetches
# it for each install step and deletes it within the same step, so no layer holds it.
#
# Layer order: base -> user -> micromamba -> the conda part -> the pip part -> suite. The
# environment brings its own Python, FFmpeg and libsndfile: nothing else comes from the base.

ARG BASE=debian:bookworm-slim
ARG MICROMAMBA_IMAGE=mambaorg/micromamba:2

FROM ${MICROMAMBA_IMAGE} AS micromamba

FROM ${BASE} AS cell
# python3 (conda-install.sh fetches a CA bundle with it) and the system's CA certificates, for a
# pulled slim image; audiomatrix's debootstrapped bases have both.
# hadolint ignore=DL3008
RUN { command -v python3 >/dev/null && test -s /etc/ssl/certs/ca-certificates.crt; } \
    || { apt-get update \
         && apt-get install -y --no-install-recommends python3 ca-certificates \
         && rm -rf /var/lib/apt/lists/*; }
RUN useradd --no-log-init --create-home --uid 10001 --user-group smoke
COPY --from=micromamba /bin/micromamba /usr/local/bin/micromamba
# conda-install.sh installs a conda cell's parts into $CONDA_ENV.
ENV CONDA_ENV=/opt/conda
ARG CA_URL=""
COPY docker/conda-install.sh /opt/audiomatrix/install.sh
ARG CONDA_LOCK
COPY ${CONDA_LOCK} /opt/audiomatrix/lock/conda.lock
RUN /opt/audiomatrix/install.sh /opt/audiomatrix/lock/conda.lock
ARG PIP_LOCK
COPY ${PIP_LOCK} /opt/audiomatrix/lock/pip.txt
RUN /opt/audiomatrix/install.sh /opt/audiomatrix/lock/pip.txt

COPY src/audiomatrix/__init__.py src/audiomatrix/compat.py /opt/audiomatrix/src/audiomatrix/
COPY src/audiomatrix/suite/ /opt/audiomatrix/src/audiomatrix/suite/
ENV PATH=/opt/conda/bin:$PATH \
    PYTHONPATH=/opt/audiomatrix/src \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 COQUI_TOS_AGREED=1 \
    HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib NUMBA_CACHE_DIR=/tmp/numba
ARG BASE
ARG PYTHON=""
ARG CELL=""
ARG LOCK_SHA256=""
ARG SOURCE=""
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="audiomatrix cell ${CELL}" \
      org.opencontainers.image.description="A locked audio-ML environment and its smoke suite" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE}" \
      org.audiomatrix.cell="${CELL}" \
      org.audiomatrix.lock-sha256="${LOCK_SHA256}" \
      org.audiomatrix.python="${PYTHON}" \
      org.audiomatrix.installer="conda"
WORKDIR /tmp
# The `smoke` user, by number so that the runtime can tell it is not root.
USER 10001:10001
CMD ["python", "-m", "audiomatrix.suite.run", "--out", "/out"]
