# make demo  - set up a venv and compile + verify an example network
# make test  - set up a venv with the test-only tools and run the default test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nirc-installed

.PHONY: demo test test-slow venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[test,frameworks]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/nirc inspect examples/mlp.nir
	$(BIN)/python examples/make_inputs.py --model examples/mlp.nir --steps 50 --out out/mlp_input.npz
	$(BIN)/nirc simulate examples/mlp.nir --input out/mlp_input.npz --output out/mlp_output.npz

test: $(STAMP)
	$(BIN)/pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/pytest -m slow -q

clean:
	rm -rf $(VENV) build dist out *.egg-info
