# Convenience wrappers; scripts/dev is the entry point (it needs no make).
.PHONY: demo test bench install clean
PREFIX ?= /usr/local
demo:
	scripts/dev demo
test:
	scripts/dev test
bench:
	scripts/dev bench
install:
	scripts/dev install $(PREFIX)
clean:
	rm -rf .build Benchmarks/.build demo-out
