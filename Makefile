# Thin wrapper around CMake so the README's commands stay short.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all configure test run install clean format port-elk

all: configure
	cmake --build $(BUILD) -j $(JOBS)

configure:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

run: all
	./scripts/run-main.sh $(BUILD)

install: all
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX),)

# Elk Scheme on uffdgc: fetch, adapt, build, run Elk's own `make check` per backend
# (ports/elk/port-elk.sh; prints "skipped: <why>" when Elk's source cannot be fetched).
port-elk: all
	./ports/elk/port-elk.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
