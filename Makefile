# make demo: the main job on a small built-in sample (or DATA=path); make test: the test suite.
# Both create or refresh .venv from requirements.txt first; an unchanged venv is not reinstalled.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the age/gender network's files (@vladmandic/face-api from the npm registry, checked; curate/embed/agegender_models.py)
FACE_API := $(VENV)/share/facecurate/face-api-1.7.15/age_gender_model.bin
OPENCV := opencv-contrib-python-headless==5.0.0.93
DATA ?=

.PHONY: venv demo test bench browser clean-venv gpu-check gpu-check-dry

venv: $(STAMP) $(FACE_API)

# --no-cache-dir: pip keeps no second copy of the ~4 GB of torch and CUDA wheels it downloads (one CI run failed on a
# full disk during this install)
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --no-cache-dir -r requirements.txt
	@# one cv2: drop the two OpenCV builds the dependencies pull, keep one headless build with contrib
	$(BIN)/pip uninstall -q -y opencv-python-headless opencv-contrib-python opencv-python
	$(BIN)/pip install -q --no-cache-dir --no-deps --force-reinstall $(OPENCV)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(FACE_API): $(STAMP) facecurate/curate/embed/agegender_models.py
	$(BIN)/python -m facecurate.curate.embed.agegender_models
	touch $(FACE_API)

demo: $(STAMP) $(FACE_API)
	$(BIN)/python demo.py $(if $(DATA),--data $(DATA),)

# the report's browser test drives Debian's chromium with chromium-driver (selenium); installed once, when missing
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	else DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; fi

# the test files run on up to 2 processes (pytest-xdist, a file's tests together): ~2x on CI's 2 cores, as most tests wait on
# subprocesses and imports; a plain `pytest tests/test_x.py` runs in one process
test: $(STAMP) $(FACE_API) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# make gpu-check: every CUDA path once on this machine's GPU, checked against the CPU; one JSON line (docs/scale-out.md)
# make gpu-check-dry: the same code paths in miniature on the CPU (what tests/test_gpu_check.py runs); ARGS=... adds options
gpu-check: $(STAMP) $(FACE_API)
	$(BIN)/python bench/gpu_check.py $(ARGS)

gpu-check-dry: $(STAMP) $(FACE_API)
	$(BIN)/python bench/gpu_check.py --dry-run $(ARGS)

clean-venv:
	rm -rf $(VENV)
