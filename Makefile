# katrace: build, test, demo, bench. Generated files live in build/.
CLANG   ?= clang
CC      ?= cc
BPFTOOL ?= bpftool
ARCH    := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
BUILD   := build
CFLAGS  ?= -O2 -g -Wall -Wextra -Wno-unused-parameter
CPPFLAGS += -Iuser -Ibpf -I$(BUILD)
LDLIBS  := -lbpf -lelf -lz -lm

USER_SRC := $(wildcard user/*.c)
USER_OBJ := $(USER_SRC:user/%.c=$(BUILD)/%.o)
# The pure logic, no BPF: what unit tests and fuzzers link.
LOGIC    := http conntab output analyze advice capture session
LOGIC_OBJ := $(LOGIC:%=$(BUILD)/%.o)
DEPS_OK  := $(BUILD)/.deps-ok

.PHONY: all deps test unit demo bench clean fuzz fuzz-regressions
all: katrace

# Missing packages are installed once; the stamp keeps later builds quiet.
$(DEPS_OK): tools/install-deps.sh
	@mkdir -p $(BUILD)
	./tools/install-deps.sh
	@touch $@
deps: $(DEPS_OK)

$(BUILD)/vmlinux.h: | $(DEPS_OK)
	@mkdir -p $(BUILD)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/katrace.bpf.o: bpf/katrace.bpf.c bpf/katrace.h $(BUILD)/vmlinux.h
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -Ibpf -c $< -o $@

$(BUILD)/katrace.skel.h: $(BUILD)/katrace.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(BUILD)/%.o: user/%.c $(wildcard user/*.h) bpf/katrace.h | $(DEPS_OK)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/loader.o: $(BUILD)/katrace.skel.h

katrace: $(USER_OBJ)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# Unit tests: pure logic, no root, no BPF.
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)
$(BUILD)/unit/%: tests/unit/%.c $(LOGIC_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $^ $(LDLIBS) -o $@
unit: $(UNIT_BIN)

# Fuzzing (libFuzzer, clang): FUZZ_SECONDS per target. What it finds goes
# into tests/fuzz/regressions/TARGET/, which make test replays under ASan.
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(LOGIC:%=user/%.c)
FUZZ_FLAGS := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -Iuser -Ibpf
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_SRC) bpf/katrace.h $(wildcard user/*.h) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_SRC) -lz -lm -o $@
$(BUILD)/fuzz/regress_%: tests/fuzz/%.c tests/fuzz/driver.c $(FUZZ_SRC) bpf/katrace.h $(wildcard user/*.h) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) $< tests/fuzz/driver.c $(FUZZ_SRC) -lz -lm -o $@
fuzz: $(BUILD)/fuzz/fuzz_http $(BUILD)/fuzz/fuzz_capture
	@for t in http capture; do \
		mkdir -p $(BUILD)/fuzz/corpus_$$t tests/fuzz/regressions/$$t; \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
		$(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -close_fd_mask=2 \
			-artifact_prefix=tests/fuzz/regressions/$$t/ -print_final_stats=1 \
			$(BUILD)/fuzz/corpus_$$t tests/fuzz/seeds/$$t 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' || exit 1; \
	done
fuzz-regressions: $(BUILD)/fuzz/regress_fuzz_http $(BUILD)/fuzz/regress_fuzz_capture

test: katrace unit fuzz-regressions
	python3 tests/run.py

demo: katrace
	./tools/racelab --demo --min-502 3

$(BUILD)/floor.bpf.o: tools/bench/floor.bpf.c $(BUILD)/vmlinux.h
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -c $< -o $@
$(BUILD)/floor.skel.h: $(BUILD)/floor.bpf.o
	$(BPFTOOL) gen skeleton $< name floor_bpf > $@.tmp && mv $@.tmp $@
$(BUILD)/katrace-floor: tools/bench/floor.c $(BUILD)/floor.skel.h
	$(CC) $(CFLAGS) -I$(BUILD) $< $(LDLIBS) -o $@

bench: katrace $(BUILD)/katrace-floor
	./tools/bench/run

clean:
	rm -rf $(BUILD) katrace
