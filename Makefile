# vmd build. Sources are picked up by directory, so adding a module touches no rule here:
#   vmm/ vmm/*/ devices/ vnc/ net/  -> libvmm.a   (machine, CPU backends, devices)
#   rpc/                            -> librpc.a   (JSON-RPC codec and transports)
#   store/                          -> libstore.a (the state directory: VM definitions, status, snapshots)
#   daemon/ -> vmd    worker/ -> vmd-worker    cli/ -> vmctl
#   tests/unit/test_*.c -> one cmocka binary each, linked with both libraries
#
# BUILD=release (default, -O2) or BUILD=asan (ASan+UBSan, used by `make test`).

BUILD ?= release
O := build/$(BUILD)
BIN := build/bin

CC ?= cc
# Parallel jobs for the sub-makes of test, unit and integration (the number of CPUs).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PKGS := libuv jansson libvncserver libvncclient slirp openssl zlib libmicrohttpd libseccomp libisofs-1
WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow=local -Wvla
CFLAGS_COMMON := -std=gnu11 $(WARN) -D_GNU_SOURCE -I. -g -MMD -MP -pthread \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

ifeq ($(BUILD),asan)
# VMD_TEST_HOOKS: hooks the integration tests drive (e.g. a worker's forbidden system call); never in release
CFLAGS_MODE := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DVMD_TEST_HOOKS
LDFLAGS_MODE := -fsanitize=address,undefined
else ifeq ($(BUILD),fuzz)
CC := clang
CFLAGS_MODE := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
LDFLAGS_MODE := -fsanitize=address,undefined
else
CFLAGS_MODE := -O2
LDFLAGS_MODE :=
endif
CFLAGS := $(CFLAGS_COMMON) $(CFLAGS_MODE) $(EXTRA_CFLAGS)
LDFLAGS := $(LDFLAGS_MODE) $(EXTRA_LDFLAGS)

VMM_SRCS := $(wildcard vmm/*.c vmm/*/*.c devices/*.c vnc/*.c net/*.c)
RPC_SRCS := $(wildcard rpc/*.c)
STORE_SRCS := $(wildcard store/*.c)
VMD_SRCS := $(wildcard daemon/*.c)
WORKER_SRCS := $(wildcard worker/*.c)
VMCTL_SRCS := $(wildcard cli/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_HELPER_SRCS := $(filter-out tests/unit/test_%.c,$(wildcard tests/unit/*.c))

obj = $(patsubst %.c,$(O)/%.o,$(1))

VMM_LIB := $(O)/libvmm.a
# libvmm is linked whole so that self-registering devices (vmm/device.h) are kept.
LINK_LIBS = $(RPC_LIB) -Wl,--whole-archive $(VMM_LIB) -Wl,--no-whole-archive $(STORE_LIB)
RPC_LIB := $(O)/librpc.a
STORE_LIB := $(O)/libstore.a
LIBS := $(STORE_LIB) $(RPC_LIB) $(VMM_LIB)

PROGS := $(if $(VMD_SRCS),$(O)/bin/vmd) $(if $(WORKER_SRCS),$(O)/bin/vmd-worker) $(if $(VMCTL_SRCS),$(O)/bin/vmctl)
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRCS))
# Test tools (tests/tools/*.c): small programs integration tests drive, e.g. a VNC viewer.
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(O)/tools/%,$(TOOL_SRCS))
# The multiboot test kernel (tests/guest/mbtest.s, GNU as --32), as an ELF image and as a flat
# binary with the a.out kludge; tests/integration/test_multiboot.sh boots both. Not BUILD-specific.
MB_TEST_KERNELS := build/guest/mbtest-elf build/guest/mbtest-aout

# Mode test ROMs (tests/guest/modes/*.s, GNU as): flat 64 KiB images for `vmctl run --firmware`
# and `qemu-system-x86_64 -bios` (tests/integration/test_emu_realmode.sh). Built, never committed.
MODE_ROM_SRCS := $(wildcard tests/guest/modes/*.s)
MODE_ROMS := $(patsubst tests/guest/modes/%.s,build/roms/%.rom,$(MODE_ROM_SRCS))
build/roms/%.rom: tests/guest/modes/%.s $(wildcard tests/guest/modes/*.inc)
	@mkdir -p $(dir $@)
	as --32 --fatal-warnings -I tests/guest/modes -o $@.o $<
	ld -m elf_i386 -Ttext=0 -e 0 --oformat binary -o $@ $@.o
	@rm -f $@.o

# Keep intermediate objects (test objects are otherwise deleted and rebuilt on every run).
.SECONDARY:

.PHONY: all build tests test unit integration deps assets demo clean install fuzz bench
all: build

# `make` gives build/bin/{vmd,vmd-worker,vmctl}: links to the release build.
build: $(PROGS) $(TOOL_BINS) $(MODE_ROMS) $(MB_TEST_KERNELS)
	@mkdir -p $(BIN)
	@for p in $(PROGS); do l=$(BIN)/$$(basename $$p) t=../$(BUILD)/bin/$$(basename $$p); \
	    [ "$$(readlink $$l)" = $$t ] || ln -sfn $$t $$l; done # unchanged links are left alone: tests may be running them

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(VMM_LIB): $(call obj,$(VMM_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(RPC_LIB): $(call obj,$(RPC_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(STORE_LIB): $(call obj,$(STORE_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(O)/bin/vmd: $(call obj,$(VMD_SRCS)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LINK_LIBS) $(LDLIBS)

$(O)/bin/vmd-worker: $(call obj,$(WORKER_SRCS)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LINK_LIBS) $(LDLIBS)

$(O)/bin/vmctl: $(call obj,$(VMCTL_SRCS)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LINK_LIBS) $(LDLIBS)

$(O)/tests/%: $(O)/tests/unit/%.o $(call obj,$(UNIT_HELPER_SRCS)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LINK_LIBS) $(LDLIBS) -lcmocka

$(O)/tools/%: $(O)/tests/tools/%.o $(call obj,$(UNIT_HELPER_SRCS)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LINK_LIBS) $(LDLIBS)

tests: $(UNIT_BINS) $(PROGS) $(TOOL_BINS) $(MODE_ROMS) $(MB_TEST_KERNELS)

MB_LDFLAGS := -m elf_i386 -N -Ttext=0x100000 -e _start --no-warn-rwx-segments
build/guest/mbtest-elf: tests/guest/mbtest.s
	@mkdir -p $(dir $@)
	as --32 -o $@.o $<
	ld $(MB_LDFLAGS) -o $@ $@.o
build/guest/mbtest-aout: tests/guest/mbtest.s
	@mkdir -p $(dir $@)
	as --32 --defsym AOUT=1 -o $@.o $<
	ld $(MB_LDFLAGS) -o $@.elf $@.o
	objcopy -O binary $@.elf $@

# Install the Debian packages the build and the tests need (idempotent; skips apt when all are present).
deps:
	@scripts/deps.sh

# Fetch the guest kernel and busybox from Debian packages into .cache/ and build initramfs images.
assets: deps
	@scripts/fetch-guest-assets.sh

unit: deps
	$(MAKE) -j$(JOBS) BUILD=asan tests
	scripts/run-unit-tests.sh build/asan/tests

integration: deps assets
	$(MAKE) -j$(JOBS) BUILD=release build
	$(MAKE) -j$(JOBS) BUILD=asan tests
	scripts/run-integration-tests.sh

# What CI runs: deps, a sanitizer build with unit tests, then integration tests that boot real guests.
# The builds use every CPU (JOBS); the tests run in parallel too (docs/testing.md).
test: deps
	$(MAKE) -j$(JOBS) BUILD=asan tests
	$(MAKE) -j$(JOBS) BUILD=release build
	scripts/fetch-guest-assets.sh
	scripts/run-all-tests.sh

demo: deps
	$(MAKE) BUILD=release build
	scripts/fetch-guest-assets.sh
	scripts/demo.sh

bench: deps
	$(MAKE) BUILD=release build
	scripts/fetch-guest-assets.sh
	bench/run-all.sh

fuzz:
	$(MAKE) BUILD=fuzz fuzzers

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- install (vmd daemon helper) ----
# make install [PREFIX=/usr/local] [DESTDIR=] [UNITDIR=/etc/systemd/system] [SYSCONFDIR=/etc]
# Binaries to PREFIX/bin, the systemd unit to UNITDIR (ExecStart rewritten for PREFIX), the default
# config to SYSCONFDIR/vmd/vmd.json (an existing one is kept), the docs to PREFIX/share/doc/vmd.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
# The workers' user (docs/security.md): created here when installing for real (no DESTDIR) as root.
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/vmd $(DESTDIR)$(PREFIX)/share/doc/vmd
	install -m 0755 $(O)/bin/vmd $(O)/bin/vmd-worker $(O)/bin/vmctl $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|g' -e 's|/etc/vmd/|$(SYSCONFDIR)/vmd/|g' \
	    -e 's|/usr/local/share/doc/|$(PREFIX)/share/doc/|g' systemd/vmd.service > $(DESTDIR)$(UNITDIR)/vmd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/vmd.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/vmd/vmd.json ] || install -m 0644 systemd/vmd.json $(DESTDIR)$(SYSCONFDIR)/vmd/vmd.json
	install -m 0644 docs/jsonrpc.md rpc/openrpc.json $(DESTDIR)$(PREFIX)/share/doc/vmd/
	[ ! -f docs/operations.md ] || install -m 0644 docs/operations.md $(DESTDIR)$(PREFIX)/share/doc/vmd/
	install -d $(DESTDIR)$(SYSUSERSDIR)
	install -m 0644 systemd/vmd.sysusers $(DESTDIR)$(SYSUSERSDIR)/vmd.conf
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && ! getent passwd vmd > /dev/null; then \
	    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmd && \
	    echo "install: created the system user vmd (sandboxed workers run as it)"; fi

# ---- fuzz targets ---------------------------------------------------------------------------
# `make BUILD=fuzz fuzzers` (or `make fuzz`; clang, ASan+UBSan, libFuzzer) builds one binary per
# tests/fuzz/fuzz_*.c as build/fuzz/fuzz_*; scripts/run-fuzz.sh [SECONDS] [TARGET...] runs them.
# Every target links both libraries and the cmocka-free unit-test helpers it may use.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(O)/%,$(FUZZ_SRCS))
FUZZ_HELPERS := $(O)/tests/unit/guest_builder.o $(O)/tests/unit/virtio_test_driver.o
ifeq ($(BUILD),fuzz)
CFLAGS += -Wno-unknown-warning-option -Wno-error  # -Werror is enforced by the gcc builds
endif
fuzzers: $(FUZZ_BINS)

$(O)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HELPERS) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -fsanitize=fuzzer -o $@ $< $(FUZZ_HELPERS) \
		$(LINK_LIBS) $(LDLIBS) -fsanitize=fuzzer
