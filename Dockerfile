# One image for the Flex Template launcher and the Dataflow workers, so both run the exact
# same code and the exact same locked packages.
ARG PYTHON_BASE=python:3.11-slim
ARG BEAM_VERSION=2.77.0
# A launcher tag seen in Google's own python-docs-samples; any newer release works the same way.
ARG LAUNCHER_IMAGE=gcr.io/dataflow-templates-base/python311-template-launcher-base:flex_templates_base_image_release_20240628_RC00

FROM apache/beam_python3.11_sdk:${BEAM_VERSION} AS beam_sdk
FROM ${LAUNCHER_IMAGE} AS launcher

FROM ${PYTHON_BASE}

ARG WORKDIR=/template
# The image's own name (cloudbuild.yaml passes it): workers then run this very image.
ARG TEMPLATE_IMAGE=""
WORKDIR ${WORKDIR}

# Beam's worker boot program and the Flex Template launcher, copied from their images.
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
COPY --from=launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher

# The hash-pinned lock, exactly as tests use it; nothing is resolved at build or launch time.
COPY template/requirements.txt ${WORKDIR}/requirements.txt
RUN pip install --no-cache-dir --require-hashes --no-deps -r ${WORKDIR}/requirements.txt \
    && pip check

COPY template/main.py ${WORKDIR}/main.py
COPY template/pipeline ${WORKDIR}/pipeline

# The launcher runs main.py; no requirements or setup file is staged (packages are baked in),
# which keeps launches fast. PYTHONPATH lets workers import the pipeline package.
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=${WORKDIR}/main.py \
    TEMPLATE_IMAGE=${TEMPLATE_IMAGE} \
    PYTHONPATH=${WORKDIR} \
    PIP_NO_DEPS=True \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2

# Runs as root, like Beam's own SDK images: Dataflow workers and the launcher are only
# documented with root images, and nothing here could verify a non-root user on them.
ENTRYPOINT ["/opt/apache/beam/boot"]
