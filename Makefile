# make demo    - set up .venv and compile + verify an example network
# make test    - set up .venv with the test-only tools and run the default test suite
# make test-slow, make oracle (Lava, Python 3.10 venv), make bench - the longer checks
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nirc-installed
LAVA_VENV ?= .venv-lava

.PHONY: demo test test-slow oracle lava-venv bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[test,frameworks]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nirc inspect examples/mlp.nir
	$(BIN)/python examples/make_inputs.py --model examples/mlp.nir --steps 50 --out out/mlp_input.npz
	$(BIN)/nirc simulate examples/mlp.nir --input out/mlp_input.npz --output out/mlp_output.npz

# pytest exits 5 when a marker selects nothing; that is not a failure here.
test: $(STAMP)
	$(BIN)/pytest -m "not slow and not lava" -q -p no:cacheprovider || [ $$? -eq 5 ]

test-slow: $(STAMP)
	$(BIN)/pytest -m "slow and not lava" -q -p no:cacheprovider || [ $$? -eq 5 ]

lava-venv:
	bash tools/lava/setup_venv.sh $(LAVA_VENV)

oracle: $(STAMP) lava-venv
	NIRC_LAVA_VENV=$(abspath $(LAVA_VENV)) $(BIN)/pytest -m lava -q -p no:cacheprovider || [ $$? -eq 5 ]

clean:
	rm -rf $(VENV) $(LAVA_VENV) build dist out *.egg-info
