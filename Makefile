# veclog build.  `make` builds bin/veclog; `make test` installs missing
# Debian packages, builds and runs every test; `make asan` / `make ubsan`
# run the unit tests under sanitizers in their own build trees.

CC       ?= cc
BUILD    ?= build
BIN      ?= bin
OPT      ?= -O2
SANFLAGS ?=

WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -pthread -I. -MMD -MP $(SANFLAGS)
LDLIBS   = -lrocksdb -lrdkafka -lcjson -levent -levent_pthreads -lyaml -lcrypto -lpthread -lm
LDFLAGS += $(SANFLAGS) -pthread

LIB_SRC  = $(sort $(wildcard store/*.c ingest/*.c query/*.c dlq/*.c embed/*.c) cmd/config.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      = $(BUILD)/libveclog.a
TEST_SRC = $(sort $(wildcard tests/test_*.c))
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all deps run test unit e2e asan ubsan bench clean
.SECONDARY:

all: $(BIN)/veclog

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BIN)/veclog: $(BUILD)/cmd/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/testutil.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	$(BIN)/veclog serve $(if $(CONFIG),--config $(CONFIG))

# The unit and integration suites, then the end-to-end suites.
test: deps
	@$(MAKE) --no-print-directory all unit e2e

# Qdrant's official JavaScript client against a real server (tests/e2e).
e2e: $(BIN)/veclog
	@VECLOG_BIN=$(BIN)/veclog bash scripts/e2e.sh

# Kafka kill -9, rebalance and flood scripts take about a minute; they run in the
# plain build only (under a sanitizer they would outgrow their watchdogs).
SLOW_SCRIPTS = $(if $(SANFLAGS),,tests/kafka_exactly_once.sh tests/kafka_rebalance.sh \
                 tests/kafka_memory.sh)

unit: $(TEST_BIN) $(BIN)/veclog
	@VECLOG_BIN=$(BIN)/veclog scripts/run-tests.sh $(TEST_BIN) scripts/readme-tour.sh tests/kafka_kcat.sh \
	    $(SLOW_SCRIPTS)

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/bin OPT=-O1 \
	    SANFLAGS="-fsanitize=address -fno-omit-frame-pointer" unit

ubsan:
	@$(MAKE) --no-print-directory BUILD=build/ubsan BIN=build/ubsan/bin OPT=-O1 \
	    SANFLAGS="-fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" unit

# Query-node load benchmark (about 2 minutes, docs/bench-http.md), the
# Kafka ingest benchmark (about 1 minute, docs/bench-ingest.md) and the
# HNSW index against hnswlib and faiss (about 4 minutes,
# docs/bench-hnsw.md), the exact-scan rate beside the memory-read
# bandwidth (30 s, docs/bench-scan.md) and the whole collection path
# against hnswlib (1 minute; BENCH_N=1000000 for the 1M figures, about 10
# minutes; docs/bench-coll.md); each script lists its BENCH_* settings.
bench: $(BIN)/veclog $(LIB)
	@BENCH_VIA_MAKE=1 BUILD=$(BUILD) BIN=$(BIN) bench/http_bench.sh
	@BENCH_VIA_MAKE=1 BUILD=$(BUILD) BIN=$(BIN) bench/ingest_bench.sh
	@BENCH_SKIP_BUILD=1 BUILD=$(BUILD) bench/hnsw_bench.sh
	@BENCH_SKIP_BUILD=1 BUILD=$(BUILD) bench/scan_bench.sh
	@BENCH_SKIP_BUILD=1 BUILD=$(BUILD) bench/coll_bench.sh

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(TEST_BIN:=.d) $(BUILD)/cmd/main.d
