# Sluice — every entry point sets up what it needs first (scripts/setup.sh is idempotent).
SWIFT ?= swift
VENV := .venv/bin
SHARED ?= ../shared
DEMO_OUT := demo-out/verdict-tokens

.PHONY: setup build release demo test test-swift test-python bench bench-setup clean

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

## The main job on the bundled example: the-verdict → GPT-2 tokens, with a report.
demo: release
	@rm -rf $(DEMO_OUT)
	.build/release/sluice run pipelines/verdict-tokens.json --out $(DEMO_OUT)
	@echo
	@echo "Output: $(DEMO_OUT)  (docs/ and tokens/ parts are standard LZ4 frames; report.json says what was read)"
	@echo "Read the token stream in Python:"
	@echo "  import lz4.frame, numpy as np"
	@echo "  ids = np.frombuffer(lz4.frame.decompress(open('$(DEMO_OUT)/tokens/part-00000.lz4','rb').read()), '<u2')"
	@echo "  print(len(ids), ids[:8])   # 5146 = 5145 tokens + the <|endoftext|> after the document"
	@$(VENV)/python -c "import lz4.frame, numpy as np" 2>/dev/null && $(VENV)/python -c "import lz4.frame, numpy as np; ids = np.frombuffer(lz4.frame.decompress(open('$(DEMO_OUT)/tokens/part-00000.lz4','rb').read()), '<u2'); print(len(ids), ids[:8])" || true

## Every test: Swift (unit + end-to-end on the built binary) and the Python checks.
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest
	$(VENV)/python scripts/check_unicode_classes.py
	$(VENV)/python -m pytest -q python/tests

bench-setup:
	@scripts/setup.sh bench

## Release-build benchmarks against the reference tools, on the same input in the same run.
bench: bench-setup
	$(SWIFT) build -c release --package-path Benchmarks
	$(VENV)/python Benchmarks/make_corpus.py .bench/corpus
	$(VENV)/python Benchmarks/tokenizer_bench.py $(SHARED)/vocab/gpt2.tiktoken .bench/corpus \
		$$($(SWIFT) build -c release --package-path Benchmarks --show-bin-path)/TokenizerBenchmark

clean:
	rm -rf .build Benchmarks/.build demo-out
