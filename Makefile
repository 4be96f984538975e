# Convenience wrappers; scripts/dev is the entry point (it needs no make).
.PHONY: demo test bench clean
demo:
	scripts/dev demo
test:
	scripts/dev test
bench:
	scripts/dev bench
clean:
	rm -rf .build Benchmarks/.build demo-out
