# make demo | make test | make bench | make figures   (each creates .venv first when it is missing or stale)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test bench figures clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

demo: setup
	$(PY) -m scripts.margin_mnist

test: setup
	$(PY) -m pytest -q tests

figures: setup
	$(PY) -m scripts.make_figures

bench: setup
	$(PY) -m benchmarks.deepfool --repeat 3
	$(PY) -m benchmarks.imagenet_memory
	$(PY) -m benchmarks.nads
	$(PY) -m benchmarks.directional_bias

clean:
	rm -rf Results .pytest_cache
