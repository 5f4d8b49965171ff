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
	# Two steps: sinabs 3.1 pins nir<=1.0.4, but snnTorch 1.0's exporter and the
	# compatibility tests need the reference nir 1.0.8; installing test extras last
	# keeps 1.0.8 (pip only warns about sinabs' pin, and sinabs works with it).
	$(BIN)/pip install --quiet -e '.[frameworks]'
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -c "from importlib.metadata import version as v; assert v('nir') == '1.0.8', v('nir')"
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
