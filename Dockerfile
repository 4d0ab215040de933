# One image for the Flex Template launcher and the Dataflow workers, so both run the exact
# same code and the exact same locked packages.
#
# Two variants from this one file, chosen by the build arg TEMPLATE_VARIANT (cloudbuild.yaml's _VARIANT):
#   cpu (default)  template/requirements.txt      TensorFlow as the CPU image has always had it
#   gpu            template/requirements-gpu.txt  the same lock plus TensorFlow's CUDA libraries from PyPI
#                                                 (tensorflow[and-cuda]); the NVIDIA driver comes from the
#                                                 worker VM (Dataflow's install-nvidia-driver)
# Nothing else differs. An unknown variant fails the build: there is no lock by that name.
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
ARG TEMPLATE_VARIANT=cpu
WORKDIR ${WORKDIR}

# Beam's worker boot program and the Flex Template launcher, copied from their images.
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
COPY --from=launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher

# The hash-pinned locks, named by variant, exactly as tests use them; the build installs the one
# TEMPLATE_VARIANT names. Nothing is resolved at build or launch time. matplotlib's font cache is built
# here, once, not by every worker's first run report.
COPY template/requirements.txt ${WORKDIR}/locks/cpu.txt
COPY template/requirements-gpu.txt ${WORKDIR}/locks/gpu.txt
RUN pip install --no-cache-dir --require-hashes --no-deps -r ${WORKDIR}/locks/${TEMPLATE_VARIANT}.txt \
    && pip check \
    && MPLBACKEND=Agg python -c "import matplotlib.font_manager"

COPY template/main.py ${WORKDIR}/main.py
COPY template/pipeline ${WORKDIR}/pipeline

# The launcher runs main.py; no requirements or setup file is staged (packages are baked in),
# which keeps launches fast. PYTHONPATH lets workers import the pipeline package.
# TEMPLATE_VARIANT (cpu or gpu) tells the pipeline which variant it runs in.
# LD_LIBRARY_PATH and TF_FORCE_GPU_ALLOW_GROWTH only matter where a GPU is attached: Dataflow mounts
# the NVIDIA driver's libraries under /usr/local/nvidia, and each of a worker's SDK processes (one per
# vCPU) shares the GPU, so none may take all its memory up front.
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=${WORKDIR}/main.py \
    TEMPLATE_IMAGE=${TEMPLATE_IMAGE} \
    TEMPLATE_VARIANT=${TEMPLATE_VARIANT} \
    PYTHONPATH=${WORKDIR} \
    PIP_NO_DEPS=True \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib \
    TF_FORCE_GPU_ALLOW_GROWTH=true

# Runs as root, like Beam's own SDK images: Dataflow workers and the launcher are only
# documented with root images, and nothing here could verify a non-root user on them.
ENTRYPOINT ["/opt/apache/beam/boot"]
