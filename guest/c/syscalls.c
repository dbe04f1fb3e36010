/*
 * picolibc glue for stark-pipe: the three standard streams, read/write/_exit over the
 * machine's system calls (read 63 from fd 0, write 64 to fd 1 and 2, exit 93).
 *
 * - stdin reads the private input through a 256-byte buffer; EOF at its end.
 * - stdout (the public output, which a proof binds) is buffered (1 KiB) and flushed when full,
 *   by fflush(stdout) and at exit; a program that faults loses what was not flushed, so
 *   call fflush(stdout) before anything risky if that output matters.
 * - stderr (diagnostics) is flushed at every newline and when full.
 * - malloc: picolibc's, over sbrk, which hands out [__heap_start, __heap_end) from the linker
 *   script. When it runs out, malloc returns NULL with errno ENOMEM (check it: C does not stop).
 * - exit(code) flushes stdout and stderr and ends the run with that code; so does returning
 *   from main. abort() exits with 134 (128 + SIGABRT, as Linux reports it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#define SYS_READ 63
#define SYS_WRITE 64
#define SYS_EXIT 93

static long syscall3(long n, long a, long b, long c) {
    register long a0 __asm__("a0") = a;
    register long a1 __asm__("a1") = b;
    register long a2 __asm__("a2") = c;
    register long a7 __asm__("a7") = n;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}

static void write_all(int fd, const char *p, size_t len) {
    while (len > 0) {
        long n = syscall3(SYS_WRITE, fd, (long)p, (long)len);
        if (n <= 0) return;
        p += n;
        len -= (size_t)n;
    }
}

/* Output buffers (fd 1 and fd 2; the buffers themselves are in .bss, not in the file). */
struct outbuf {
    size_t len;
    char data[1024];
};
static struct outbuf out_buf, err_buf;

static void flush_buf(struct outbuf *b) {
    write_all(b == &out_buf ? 1 : 2, b->data, b->len);
    b->len = 0;
}

static int out_put(char c, FILE *f) {
    (void)f;
    out_buf.data[out_buf.len++] = c;
    if (out_buf.len == sizeof out_buf.data) flush_buf(&out_buf);
    return (unsigned char)c;
}

static int err_put(char c, FILE *f) {
    (void)f;
    err_buf.data[err_buf.len++] = c;
    if (c == '\n' || err_buf.len == sizeof err_buf.data) flush_buf(&err_buf);
    return (unsigned char)c;
}

static int out_flush(FILE *f) {
    (void)f;
    flush_buf(&out_buf);
    return 0;
}

static int err_flush(FILE *f) {
    (void)f;
    flush_buf(&err_buf);
    return 0;
}

/* Input buffer. */
static unsigned char in_data[256];
static size_t in_len, in_pos;
static int in_eof;

static int in_get(FILE *f) {
    (void)f;
    if (in_pos == in_len) {
        if (in_eof) return _FDEV_EOF;
        long n = syscall3(SYS_READ, 0, (long)in_data, (long)sizeof in_data);
        if (n <= 0) {
            in_eof = 1;
            return n < 0 ? _FDEV_ERR : _FDEV_EOF;
        }
        in_len = (size_t)n;
        in_pos = 0;
    }
    return in_data[in_pos++];
}

static FILE stdin_file = FDEV_SETUP_STREAM(NULL, in_get, NULL, _FDEV_SETUP_READ);
static FILE stdout_file = FDEV_SETUP_STREAM(out_put, NULL, out_flush, _FDEV_SETUP_WRITE);
static FILE stderr_file = FDEV_SETUP_STREAM(err_put, NULL, err_flush, _FDEV_SETUP_WRITE);

FILE *const stdin = &stdin_file;
FILE *const stdout = &stdout_file;
FILE *const stderr = &stderr_file;

/* POSIX read/write on the same descriptors, for code that uses them directly. Reads go
   through stdin's buffer first, so mixing getchar() and read(0, ...) keeps the byte order. */
ssize_t read(int fd, void *buf, size_t len) {
    if (fd != 0) {
        errno = EBADF;
        return -1;
    }
    size_t got = 0;
    if (in_pos < in_len) {
        got = in_len - in_pos < len ? in_len - in_pos : len;
        memcpy(buf, in_data + in_pos, got);
        in_pos += got;
        return (ssize_t)got;
    }
    long n = syscall3(SYS_READ, 0, (long)buf, (long)len);
    if (n < 0) {
        errno = (int)-n;
        return -1;
    }
    return n;
}

ssize_t write(int fd, const void *buf, size_t len) {
    if (fd == 1) flush_buf(&out_buf);
    else if (fd == 2) flush_buf(&err_buf);
    else {
        errno = EBADF;
        return -1;
    }
    write_all(fd, buf, len);
    return (ssize_t)len;
}

/* There are no other processes and no signals: raise() with the default action (abort(),
   failed assert()) ends up here, and the program exits with 128 + the signal number, the
   status a shell shows for a process killed by that signal (134 for SIGABRT). */
pid_t getpid(void) { return 1; }

int kill(pid_t pid, int sig) {
    if (pid != 1) {
        errno = ESRCH;
        return -1;
    }
    if (sig != 0) _exit(128 + sig);
    return 0;
}

void _exit(int code) {
    flush_buf(&out_buf);
    flush_buf(&err_buf);
    syscall3(SYS_EXIT, code, 0, 0);
    for (;;) {
    }
}
