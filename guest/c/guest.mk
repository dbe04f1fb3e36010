# Build a C program for stark-pipe with picolibc (Debian: apt-get install gcc-riscv64-unknown-elf
# binutils-riscv64-unknown-elf picolibc-riscv64-unknown-elf).
#
# In your Makefile:
#     PROGRAM := hello              # builds hello.elf
#     SOURCES := main.c util.c      # C or assembly (.S) sources
#     include path/to/guest.mk
# Optional, before the include: HEAP_SIZE (bytes, default 256 KiB), STACK_SIZE (default 64 KiB),
# CFLAGS (default -O2 -Wall -Wextra), LDLIBS (e.g. -lm), BUILD (object folder, default build),
# OUT (the program, default $(PROGRAM).elf).
#
# Then `make` builds $(OUT): rv32im/ilp32, no compressed instructions, linked with this
# folder's crt0.S, syscalls.c and stark-pipe.ld, and byte-identical when rebuilt from the same
# sources in any folder.

GUEST_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
GUEST_CC ?= riscv64-unknown-elf-gcc
HEAP_SIZE ?= 0x40000
STACK_SIZE ?= 0x10000
CFLAGS ?= -O2 -Wall -Wextra
BUILD ?= build
OUT ?= $(PROGRAM).elf

GUEST_ARCH := -march=rv32im -mabi=ilp32 -mcmodel=medlow
GUEST_LIBC := --specs=picolibc.specs --picolibc-buildtype=release
GUEST_CFLAGS = $(GUEST_ARCH) $(GUEST_LIBC) -ffunction-sections -fdata-sections \
	-ffile-prefix-map=$(CURDIR)=. -ffile-prefix-map=$(abspath $(GUEST_DIR))=stark-pipe \
	$(CFLAGS)
GUEST_LDFLAGS = $(GUEST_ARCH) $(GUEST_LIBC) -static -nostartfiles -T $(GUEST_DIR)/stark-pipe.ld \
	-Wl,--build-id=none -Wl,--gc-sections \
	-Wl,--defsym=__heap_size=$(HEAP_SIZE) -Wl,--defsym=__stack_size=$(STACK_SIZE)

GUEST_OBJS := $(BUILD)/stark-pipe/crt0.o $(BUILD)/stark-pipe/syscalls.o \
	$(patsubst %,$(BUILD)/%.o,$(basename $(SOURCES)))

.PHONY: all clean
all: $(OUT)

$(OUT): $(GUEST_OBJS) $(GUEST_DIR)/stark-pipe.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS) $(LDLIBS)

$(BUILD)/stark-pipe/%.o: $(GUEST_DIR)/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(BUILD)/stark-pipe/%.o: $(GUEST_DIR)/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

clean:
	rm -rf $(BUILD) $(OUT)
