/*
 * tritonstack launch shim: LD_PRELOADed into tritonserver by serve/embedded.py, nowhere else.
 *
 * 1. The admin key never appears on the command line: the launcher passes a placeholder
 *    (TS_PLACEHOLDER) inside the restricted-endpoint arguments and writes the key to a 0600 file in
 *    the server's private 0700 work dir. Before main() runs, this constructor reads that file,
 *    unlinks it, and points the argv entries that hold the placeholder at fresh heap copies with
 *    the key. The original argument strings (what /proc/<pid>/cmdline shows) keep the placeholder.
 * 2. Regions the server itself uses cannot be registered as system shared memory: shm_open of a
 *    name starting with the guarded prefix and a digit (the embedded servers' IPC files,
 *    `tritonstack_<pid>_...`; clients use `tritonstack_client_...`) is refused unless the caller is
 *    the Python backend (libtriton_python.so), which creates the stubs' IPC regions.
 * 3. The Python backend's IPC files in /dev/shm get the process umask (0077 from the launcher):
 *    the Python backend fchmod()s them to 0644 after creating them, which this caps.
 * 4. LD_PRELOAD and this shim's variables are removed from the environment, so the Python stubs
 *    tritonserver starts inherit neither.
 * A placeholder that cannot be replaced is fatal: the server must never run with a known key.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TS_PLACEHOLDER "@TRITONSTACK_ADMIN_KEY@"
#define TS_KEY_FILE_ENV "TRITONSTACK_SHIM_KEY_FILE"
#define TS_SHM_GUARD_ENV "TRITONSTACK_SHIM_SHM_GUARD"
#define TS_KEY_MAX 1024
#define TS_EXIT_CODE 78

static char shm_guard[256];
static mode_t saved_umask = 077;

static void die(const char *what) {
    fprintf(stderr, "tritonstack launch shim: %s; refusing to start\n", what);
    _exit(TS_EXIT_CODE);
}

/* Read the key (trailing newline stripped) into buf and unlink the file; return its length. */
static size_t read_key(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) die("cannot open the admin key file");
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (unlink(path) != 0) die("cannot unlink the admin key file");
    if (n <= 0) die("the admin key file is empty");
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = '\0';
    return (size_t)n;
}

/* A heap copy of arg with every placeholder replaced by key. */
static char *substitute(const char *arg, const char *key, size_t key_len) {
    size_t ph_len = strlen(TS_PLACEHOLDER), count = 0;
    for (const char *p = strstr(arg, TS_PLACEHOLDER); p; p = strstr(p + ph_len, TS_PLACEHOLDER)) count++;
    char *out = malloc(strlen(arg) + count * key_len + 1);
    if (out == NULL) die("out of memory");
    char *dst = out;
    for (const char *src = arg, *p; *src; src = p + ph_len) {
        p = strstr(src, TS_PLACEHOLDER);
        if (p == NULL) { strcpy(dst, src); return out; }
        memcpy(dst, src, (size_t)(p - src));
        dst += p - src;
        memcpy(dst, key, key_len);
        dst += key_len;
    }
    *dst = '\0';
    return out;
}

static void replace_placeholders(int argc, char **argv) {
    int wanted = 0;
    for (int i = 0; i < argc; i++) wanted |= strstr(argv[i], TS_PLACEHOLDER) != NULL;
    const char *path = getenv(TS_KEY_FILE_ENV);
    if (path == NULL || *path == '\0') {
        if (wanted) die(TS_KEY_FILE_ENV " is not set");
        return;
    }
    char key[TS_KEY_MAX];
    size_t key_len = read_key(path, key, sizeof key); /* unlinked even when no argument needs it */
    for (int i = 0; i < argc; i++)
        if (strstr(argv[i], TS_PLACEHOLDER) != NULL) argv[i] = substitute(argv[i], key, key_len);
    explicit_bzero(key, sizeof key);
}

__attribute__((constructor)) static void tritonstack_shim_init(int argc, char **argv, char **envp) {
    (void)envp;
    saved_umask = umask(077); /* read it: single-threaded here, restored on the next line */
    umask(saved_umask);
    const char *guard = getenv(TS_SHM_GUARD_ENV);
    if (guard != NULL) snprintf(shm_guard, sizeof shm_guard, "%s", guard);
    replace_placeholders(argc, argv);
    unsetenv(TS_KEY_FILE_ENV);
    unsetenv(TS_SHM_GUARD_ENV);
    unsetenv("LD_PRELOAD");
}

/* True when the code at addr belongs to the Python backend library. */
static int from_python_backend(const void *addr) {
    Dl_info info;
    if (dladdr(addr, &info) == 0 || info.dli_fname == NULL) return 0;
    const char *base = strrchr(info.dli_fname, '/');
    return strcmp(base ? base + 1 : info.dli_fname, "libtriton_python.so") == 0;
}

static int guarded(const char *name) {
    if (shm_guard[0] == '\0' || name == NULL) return 0;
    while (*name == '/') name++;
    size_t len = strlen(shm_guard); /* guards "<prefix><digit>...": servers' files, not clients' */
    return strncmp(name, shm_guard, len) == 0 && name[len] >= '0' && name[len] <= '9';
}

int shm_open(const char *name, int oflag, mode_t mode) {
    static int (*real_shm_open)(const char *, int, mode_t);
    if (guarded(name) && !from_python_backend(__builtin_return_address(0))) {
        errno = EACCES;
        return -1;
    }
    if (real_shm_open == NULL) real_shm_open = (int (*)(const char *, int, mode_t))dlsym(RTLD_NEXT, "shm_open");
    if (real_shm_open == NULL) { errno = ENOSYS; return -1; }
    return real_shm_open(name, oflag, mode);
}

int fchmod(int fd, mode_t mode) {
    static int (*real_fchmod)(int, mode_t);
    if (from_python_backend(__builtin_return_address(0))) mode &= ~saved_umask;
    if (real_fchmod == NULL) real_fchmod = (int (*)(int, mode_t))dlsym(RTLD_NEXT, "fchmod");
    if (real_fchmod == NULL) { errno = ENOSYS; return -1; }
    return real_fchmod(fd, mode);
}
