# katrace: build, test, demo, bench. Generated files live in build/.
#   make          build ./katrace (says which Debian build packages are missing)
#   make deps     install, as root, everything the tests, demo and bench need
#   make test | demo | bench   install what is missing, then run
#   make test-native | test-kernels   the tests on this kernel, or on the VMs only
#   make install [PREFIX= DESTDIR=] | deb   install, or build a Debian package
#   make screenshot   the README's picture of the HTML report (tools/report/report.png)
CLANG   ?= clang
CC      ?= cc
BPFTOOL ?= bpftool
ARCH    := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
BUILD   := build
CFLAGS  ?= -O2 -g -Wall -Wextra -Wno-unused-parameter
CPPFLAGS += -Iuser -Ibpf -I$(BUILD) -MMD -MP
BPF_CFLAGS := -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -Ibpf -MMD -MP
LDLIBS  := -lbpf -lelf -lz -lm
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined

USER_SRC := $(wildcard user/*.c)
USER_OBJ := $(USER_SRC:user/%.c=$(BUILD)/%.o)
# The pure logic, no BPF: what unit tests and fuzzers link.
LOGIC    := http conn conntab owners timeline output html analyze advice capture session
BUILD_OK := $(BUILD)/.build-deps-ok
DEPS_OK  := $(BUILD)/.deps-ok

.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all deps test test-native test-kernels unit demo bench clean fuzz fuzz-regressions install deb screenshot
all: katrace

# The build packages are checked, not installed: a packager or a non-root
# developer builds with what they have; make deps installs the rest.
$(BUILD_OK): tools/install-deps.sh
	@mkdir -p $(BUILD)
	@./tools/install-deps.sh --check build
	@touch $@
$(DEPS_OK): tools/install-deps.sh
	@mkdir -p $(BUILD)
	./tools/install-deps.sh
	@touch $@ $(BUILD_OK)
deps: $(DEPS_OK)

$(BUILD)/vmlinux.h: | $(BUILD_OK)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The same programs, reading page fragments through skb dynptrs (Linux 6.12+):
# the loader opens katrace_bpf's skeleton with this object where it fits.
$(BUILD)/katrace_dynptr.bpf.o: bpf/katrace.bpf.c $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -DKATRACE_SKB_DYNPTR -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst .,_,$*)_bpf > $@

$(BUILD)/%.o: user/%.c | $(BUILD_OK)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/loader.o: $(BUILD)/katrace.skel.h $(BUILD)/katrace_dynptr.skel.h $(BUILD)/features.skel.h

katrace: $(USER_OBJ)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# Unit tests: pure logic, no root, no BPF, under ASan and UBSan.
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)
UNIT_LOGIC := $(LOGIC:%=$(BUILD)/unit/%.o)
$(BUILD)/unit/%.o: user/%.c | $(BUILD_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SANITIZE) -c $< -o $@
$(BUILD)/unit/%: tests/unit/%.c $(UNIT_LOGIC)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SANITIZE) $^ -lz -lm -o $@
unit: $(UNIT_BIN)

# Fuzzing (libFuzzer, clang): FUZZ_SECONDS per target. What it finds goes
# into tests/fuzz/regressions/TARGET/, which make test replays under ASan.
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(LOGIC:%=user/%.c)
FUZZ_FLAGS := -g -O1 $(SANITIZE) -Iuser -Ibpf
FUZZ_HDRS := $(wildcard user/*.h bpf/*.h)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_SRC) $(FUZZ_HDRS) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_SRC) -lz -lm -o $@
$(BUILD)/fuzz/regress_%: tests/fuzz/%.c tests/fuzz/driver.c $(FUZZ_SRC) $(FUZZ_HDRS) | $(DEPS_OK)
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

# make test: the unit tests, the integration tests on this kernel, then the
# kernel-dependent ones on each kernel of KERNELS, booted under qemu
# (tools/vm). test-native leaves the kernels out; test-kernels runs them only.
KERNELS ?= 6.1 6.12
TEST_PEERS := $(BUILD)/https-go
test: $(DEPS_OK) katrace unit fuzz-regressions $(TEST_PEERS)
	python3 tests/run.py --kernels "$(KERNELS)"
test-native: $(DEPS_OK) katrace unit fuzz-regressions $(TEST_PEERS)
	python3 tests/run.py
test-kernels: $(DEPS_OK) katrace unit fuzz-regressions $(TEST_PEERS)
	python3 tests/run.py --only-kernels --kernels "$(KERNELS)"

# An HTTPS server whose TLS is Go's own: a TLS library katrace cannot probe.
$(BUILD)/https-go: tests/servers/https.go | $(DEPS_OK)
	HOME=$(abspath $(BUILD)) GOCACHE=$(abspath $(BUILD))/go-cache GO111MODULE=off \
		go build -o $@ $<

# make demo SCENARIO=refused|deploy|crash|timeout|kill shows another shape
SCENARIO ?= race
demo: $(DEPS_OK) katrace
	./tools/racelab --demo --scenario $(SCENARIO) --min-502 3

$(BUILD)/floor.bpf.o: tools/bench/floor.bpf.c $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(BUILD)/katrace-floor: tools/bench/floor.c $(BUILD)/floor.skel.h
	$(CC) $(CFLAGS) -I$(BUILD) $< $(LDLIBS) -o $@

bench: $(DEPS_OK) katrace $(BUILD)/katrace-floor
	./tools/bench/run

screenshot: $(DEPS_OK) katrace
	./tools/report/screenshot $(CAPTURE)

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, its man page, the
# systemd unit (its paths under PREFIX), the alert rules, the dashboard and a
# logrotate file under share/katrace. make deb: the same as a Debian package.
PREFIX  ?= /usr/local
DESTDIR ?=
SHARE_FILES := tools/deploy/katrace-alerts.yml tools/deploy/katrace-dashboard.json \
	       tools/deploy/logrotate.conf tools/deploy/katrace-daemonset.yaml
install: katrace
	install -D -m 0755 katrace $(DESTDIR)$(PREFIX)/bin/katrace
	install -D -m 0644 tools/man/katrace.8 $(DESTDIR)$(PREFIX)/share/man/man8/katrace.8
	gzip -9nf $(DESTDIR)$(PREFIX)/share/man/man8/katrace.8
	mkdir -p $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/katrace
	sed 's|/usr/local|$(PREFIX)|g' tools/deploy/katrace.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/katrace.service
	install -m 0644 $(SHARE_FILES) $(DESTDIR)$(PREFIX)/share/katrace/
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/katrace/README.md
deb: katrace
	./tools/deb/build $(BUILD)

clean:
	rm -rf $(BUILD) katrace

-include $(wildcard $(BUILD)/*.d $(BUILD)/unit/*.d)
