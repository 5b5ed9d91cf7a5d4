# caskfs - non-recursive build. `make` builds build/caskfs; `make test` installs
# what is missing, builds, runs the C unit tests, then pytest; `make asan` runs
# the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer.

CC ?= cc
CFLAGS ?= -O2 -g
PYTHON ?= /usr/bin/python3
BUILD ?= build

WARN := -Wall -Wextra -Werror -Wmissing-prototypes
FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS := $(shell pkg-config --libs fuse3 2>/dev/null || echo -lfuse3)
ALL_CPPFLAGS := -D_GNU_SOURCE -I. $(FUSE_CFLAGS) $(SSL_CFLAGS) $(CPPFLAGS)
ALL_CFLAGS := -std=c11 $(WARN) -pthread -MMD -MP $(CFLAGS)
SSL_CFLAGS := $(shell pkg-config --cflags libssl libcrypto 2>/dev/null)
SSL_LIBS := $(shell pkg-config --libs libssl libcrypto 2>/dev/null || echo -lssl -lcrypto)
LIBS := $(FUSE_LIBS) $(SSL_LIBS) -luring -llmdb -lxxhash -lzstd -lsodium -lm -pthread

# Each part may hold subfolders (one per mechanism group); all of a part's
# sources go into its one static library.
part_src = $(sort $(wildcard $(1)/*.c $(1)/*/*.c))
STORE_SRC := $(call part_src,store)
META_SRC := $(call part_src,meta)
FS_SRC := $(call part_src,fs)
UNIT_SRC := $(wildcard tests/unit/test_*.c)

STORE_OBJ := $(STORE_SRC:%.c=$(BUILD)/%.o)
META_OBJ := $(META_SRC:%.c=$(BUILD)/%.o)
FS_OBJ := $(FS_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(filter %/main.o,$(FS_OBJ))
FS_LIB_OBJ := $(filter-out $(MAIN_OBJ),$(FS_OBJ))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit pytest asan fuzz run bench sim clean deps format

all: $(BUILD)/caskfs

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# The files built for AVX2; store/log/hash.c and fs/daemon/chunk.c call them
# only where the CPU has it.
$(filter %/hash_avx2.o,$(STORE_OBJ)) $(filter %/chunk_avx2.o,$(FS_OBJ)): ALL_CFLAGS += -mavx2

$(BUILD)/libstore.a: $(STORE_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libmeta.a: $(META_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libfs.a: $(FS_LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

PART_LIBS := $(BUILD)/libfs.a $(BUILD)/libmeta.a $(BUILD)/libstore.a

$(BUILD)/caskfs: $(MAIN_OBJ) $(PART_LIBS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(PART_LIBS) $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(PART_LIBS) tests/unit/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -DCASKFS_SRCDIR=\"$(CURDIR)\" $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< \
		$(PART_LIBS) $(LIBS) -lcmocka

# The random-operation exerciser (tests/test_exerciser.py, scripts/fsx-soak).
$(BUILD)/fsx: tests/fsx/fsx.c
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

$(BUILD)/bench-node: scripts/bench_node.c
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(SSL_LIBS) -pthread

$(BUILD)/bench-sync: scripts/bench_sync.c $(BUILD)/libstore.a
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libstore.a $(LIBS)

$(BUILD)/sim-cluster: scripts/sim_cluster.c $(BUILD)/libstore.a
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libstore.a $(LIBS)

# placement and gossip of 100 nodes and 10M keys, in one process (docs/BENCHMARKS.md)
sim: $(BUILD)/sim-cluster
	$(BUILD)/sim-cluster

$(BUILD)/bench-store: scripts/bench_store.c $(BUILD)/libstore.a
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(BENCH_CPPFLAGS) $(LDFLAGS) -o $@ $< \
		$(BUILD)/libstore.a $(LIBS) $(BENCH_LIBS)

# libFuzzer harnesses (clang): the store library built with coverage and
# sanitizers, each harness run for FUZZ_SECONDS from its seed corpus.
FUZZ_SECONDS ?= 20
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(PART_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< \
		$(PART_LIBS) $(LIBS)

fuzz-bin: $(FUZZ_BIN)

fuzz: deps
	$(MAKE) BUILD=build/fuzz CC=clang \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
		fuzz-bin
	@set -e; for f in $(FUZZ_SRC:tests/fuzz/%.c=%); do \
		seeds=tests/fuzz/seeds-$${f#fuzz_}; seeds=$${seeds%_open}; \
		work=$$(mktemp -d); \
		echo "== $$f for $(FUZZ_SECONDS)s"; \
		if ! build/fuzz/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
			$$work $$seeds > $$work.log 2>&1; then \
			tail -60 $$work.log; rm -rf $$work $$work.log; exit 1; \
		fi; \
		grep -E "^#[0-9]+ *DONE" $$work.log || tail -2 $$work.log; \
		rm -rf $$work $$work.log; \
	done

deps:
	@scripts/install-deps.sh

# Unit tests run on tmpfs when there is one: they exercise logic, and fsync on
# a real disk would only make them slow (pytest runs on the real disk).
UNIT_TMP := $(shell test -d /dev/shm && test -w /dev/shm && echo /dev/shm || echo /tmp)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; TMPDIR=$(UNIT_TMP) $$t; done

pytest: $(BUILD)/caskfs $(BUILD)/fsx
	$(PYTHON) -m pytest -q tests

# make test fuzzes each decoder briefly; make fuzz alone runs them longer.
TEST_FUZZ_SECONDS ?= 10

test: deps
	$(MAKE) all unit
	scripts/check-layout --build $(BUILD)
	$(MAKE) fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
	$(MAKE) pytest

asan: deps
	$(MAKE) BUILD=build/asan CC=clang \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" unit

run: deps all
	@scripts/run-demo.sh

bench: deps
	@scripts/bench-store

format:
	clang-format -i $(STORE_SRC) $(META_SRC) $(FS_SRC) $(UNIT_SRC) $(FUZZ_SRC) \
		scripts/bench_store.c scripts/bench_node.c scripts/bench_sync.c scripts/sim_cluster.c \
		$(wildcard store/*.h store/*/*.h meta/*.h meta/*/*.h fs/*.h fs/*/*.h) tests/unit/*.h

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
