/*
 * Start-up code of C programs under stark-pipe: set gp, sp and tp, run the constructors, call
 * main(0, {NULL}, {NULL}) and exit(main's return value) (which flushes stdout, see syscalls.c).
 * .bss and the heap need no clearing: the loader zero-fills every segment past its file bytes,
 * stark-pipe and Linux/qemu alike; .data and .tdata are used in place, so nothing is copied.
 */
    .section .text.start, "ax"
    .globl _start
    .type _start, @function
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top
    la tp, __tls_base
    call __libc_init_array
    li a0, 0
    la a1, empty_vector
    la a2, empty_vector
    call main
    call exit
    unimp
    .size _start, . - _start

    .section .rodata.empty_vector, "a"
    .balign 4
empty_vector:
    .word 0
