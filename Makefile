# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Which torch build: empty = the plain package index (here: the local CPU wheel). On Linux the
# public PyPI torch is the multi-GB CUDA build, so elsewhere pick the CPU wheels with
#   make TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# or a CUDA index (.../whl/cu126) for a GPU; the version stays torch==2.13.0.
TORCH_INDEX_URL ?=
TORCH_PIP_ARGS := $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))

.PHONY: demo test install lint ui clean

$(STAMP): pyproject.toml setup.py kernels/build.py $(wildcard kernels/*.c kernels/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, from TORCH_INDEX_URL when given (see above)
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) torch==2.13.0
	echo "torch==2.13.0" > $(VENV)/constraints.txt
	$(BIN)/python -m pip install --quiet -c $(VENV)/constraints.txt -e ".[dev]"
	$(BIN)/python -c "import torch, seofp_lab; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/seofp demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check seofp_lab tests app kernels benchmarks

ui: $(STAMP)
	$(BIN)/seofp ui

clean:
	rm -rf $(VENV) build *.egg-info seofp_lab/_seofp*
