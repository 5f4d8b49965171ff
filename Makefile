# make demo    - set up .venv with nirc and its runtime dependencies, compile + verify examples
# make test    - add the test-only tools (frameworks, vendor simulators) and run the default suite
# make test-slow, make oracle (Lava, Python 3.10 venv), make bench - the longer checks
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.nirc-installed
RUNTIME := $(VENV)/.nirc-runtime
LAVA_VENV ?= .venv-lava

.PHONY: demo test test-slow test-browser oracle lava-venv bench docs corpus fuzz-hostile kill-trials clean
BENCHMARKS := nirio frontend compile partition speck speck_sinabs speck_fidelity xylo xylo_rockpool lava cross_target provenance delay_balance fidelity accuracy

# nirc and its runtime dependencies only (no torch): all `make demo` needs.
# A venv that already has the test tools (STAMP, newer than pyproject.toml) has them too.
$(RUNTIME): pyproject.toml
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then touch $@; exit 0; fi; \
	set -e; [ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV); \
	$(BIN)/pip install --quiet -e .; \
	touch $@

# The test-only tools on top: exporting frameworks (torch CPU, snnTorch, Norse, Sinabs,
# Rockpool), vendor simulators (xylosim) and the reference nir package.
$(STAMP): pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	# Two steps: sinabs 3.1 pins nir<=1.0.4, but snnTorch 1.0's exporter and the
	# compatibility tests need the reference nir 1.0.8; installing test extras last
	# keeps 1.0.8 (pip only warns about sinabs' pin, and sinabs works with it).
	$(BIN)/pip install --quiet -e '.[frameworks]'
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -c "from importlib.metadata import version as v; assert v('nir') == '1.0.8', v('nir')"
	touch $(STAMP) $(RUNTIME)

# The headline job: a spiking CNN (exported by Sinabs) onto Speck, emulated from the
# emitted files, with a mapping report; then a trained MLP proven bit-exact on Loihi 2
# and a recurrent SNN on Xylo.
demo: $(RUNTIME)
	$(BIN)/nirc inspect examples/cnn.nir
	$(BIN)/nirc compile examples/cnn.nir --target speck -o out/cnn-speck --report
	$(BIN)/python examples/make_inputs.py --model examples/cnn.nir --steps 20 --out out/cnn_input.npz
	$(BIN)/nirc emulate out/cnn-speck --input out/cnn_input.npz --output out/cnn_speck_output.npz
	$(BIN)/nirc verify examples/cnn.nir --target speck --steps 20 --samples 2
	$(BIN)/nirc verify examples/mlp.nir --target loihi2
	$(BIN)/nirc verify examples/srnn.nir --target xylo
	@echo "open out/cnn-speck/report.html to see the mapping"

# pytest exits 5 when a marker selects nothing; that is not a failure here.
test: $(STAMP)
	$(BIN)/pytest -m "not slow and not lava" -q -p no:cacheprovider || [ $$? -eq 5 ]

test-slow: $(STAMP)
	$(BIN)/pytest -m "slow and not lava" -q -p no:cacheprovider || [ $$? -eq 5 ]

lava-venv:
	bash tools/lava/setup_venv.sh $(LAVA_VENV)

oracle: $(STAMP) lava-venv
	NIRC_LAVA_VENV=$(abspath $(LAVA_VENV)) $(BIN)/pytest -m lava -q -p no:cacheprovider || [ $$? -eq 5 ]

# Renders report.html in headless Chromium (Debian package 'chromium').
test-browser: $(STAMP)
	NIRC_REQUIRE_BROWSER=1 $(BIN)/pytest -m slow -q -p no:cacheprovider tests/test_mapping_report.py

# Each benchmark prints a table and writes benchmarks/results/<name>.json.
bench: $(STAMP) lava-venv
	for b in $(BENCHMARKS); do $(BIN)/python benchmarks/bench_$$b.py || exit 1; done

bench-%: $(STAMP)
	$(BIN)/python benchmarks/bench_$*.py

# Regenerate the target guide's tables and JSON Schema, and the bad-input corpus.
docs: $(STAMP)
	$(BIN)/python docs/make_target_docs.py

corpus: $(STAMP)
	$(BIN)/python tests/corpus/make_corpus.py

# Hostile inputs (docs/limits.md): the long fuzz run and the kill -9 trials, with counts.
fuzz-hostile: $(STAMP)
	$(BIN)/python tools/fuzz_hostile.py --nir 500 --yaml 150 --npz 60 --config 120 --json benchmarks/results/fuzz_hostile.json

kill-trials: $(STAMP)
	$(BIN)/python tools/kill_trials.py --trials 30 --json benchmarks/results/kill_trials.json

clean:
	rm -rf $(VENV) $(LAVA_VENV) build dist out *.egg-info
