/* launch.c: the environment and id exchange of launch.h (POSIX files and
 * sockets). */
#include "dist/launch.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/progress.h"

/* Leads the id in the file and on the wire, then the id's length (8 bytes,
 * little-endian), then the id. */
static const char MAGIC[8] = {'t', 'n', 'l', 'l', 'm', 'i', 'd', '1'};
#define HEADER_BYTES 16

/* The integer in variable name: 1 found, 0 unset, -1 malformed. */
static int env_int(const char *name, int *value, TnError *err) {
    const char *text = getenv(name);
    if (!text) return 0;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < 0 || v > INT_MAX)
        return tn_fail(err, "%s=%s: not a non-negative integer", name, text);
    *value = (int)v;
    return 1;
}

int tn_launch_from_env(TnLaunch *launch, TnError *err) {
    static const struct { const char *source, *rank, *size, *local; } launchers[] = {
        {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
        {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
    };
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++) {
        TnLaunch l = {.source = launchers[i].source};
        int rank = env_int(launchers[i].rank, &l.rank, err), size = env_int(launchers[i].size, &l.size, err);
        if (rank < 0 || size < 0) return -1;
        if (!rank && !size) continue;
        if (!rank || !size)
            return tn_fail(err, "%s sets %s but not %s", l.source, rank ? launchers[i].rank : launchers[i].size,
                           rank ? launchers[i].size : launchers[i].rank);
        if (env_int(launchers[i].local, &l.local_rank, err) < 0) return -1;
        if (l.size < 1 || l.rank >= l.size)
            return tn_fail(err, "%s=%d with %s=%d: the rank must lie in [0, size)", launchers[i].rank, l.rank,
                           launchers[i].size, l.size);
        *launch = l;
        return 1;
    }
    return 0;
}

/* The header and the id, as rank 0 writes them (caller frees). */
static unsigned char *encode_message(const void *id, size_t bytes) {
    unsigned char *message = tn_malloc(HEADER_BYTES + bytes);
    memcpy(message, MAGIC, sizeof MAGIC);
    for (int i = 0; i < 8; i++) message[8 + i] = (unsigned char)((uint64_t)bytes >> (8 * i));
    memcpy(message + HEADER_BYTES, id, bytes);
    return message;
}

/* Checks a received header against the id length expected. */
static int check_header(const unsigned char header[HEADER_BYTES], size_t bytes, const char *from, TnError *err) {
    uint64_t length = 0;
    for (int i = 0; i < 8; i++) length |= (uint64_t)header[8 + i] << (8 * i);
    if (memcmp(header, MAGIC, sizeof MAGIC) != 0) return tn_fail(err, "%s: not a tnllm id (bad magic)", from);
    if (length != bytes) return tn_fail(err, "%s: an id of %llu bytes, expected %zu", from, (unsigned long long)length, bytes);
    return 0;
}

static void pause_briefly(void) {
    struct timespec wait = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    nanosleep(&wait, NULL);
}

static int share_by_file(const char *path, int rank, void *id, size_t bytes, double timeout_s, TnError *err) {
    size_t total = HEADER_BYTES + bytes;
    int rc = 0;
    if (rank == 0) {
        unsigned char *data = encode_message(id, bytes);
        rc = tn_file_exists(path) ? tn_fail(err, "--dist-init file:%s: the file exists (a stale id of another job?); "
                                                 "remove it or give a fresh path", path)
                                  : tn_write_file(path, data, total, err);
        free(data);
        return rc;
    }
    /* the rename makes the file appear whole: a reader never sees part of it */
    for (double deadline = tn_now() + timeout_s; !tn_file_exists(path); pause_briefly())
        if (tn_now() > deadline)
            return tn_fail(err, "--dist-init file:%s: no id from rank 0 after %.0f s", path, timeout_s);
    char *text = NULL;
    size_t size = 0;
    if (tn_read_file(path, &text, &size, err)) rc = -1;
    else if (size != total) rc = tn_fail(err, "%s: %zu bytes, expected %zu (not a tnllm id file)", path, size, total);
    else if (!(rc = check_header((unsigned char *)text, bytes, path, err))) memcpy(id, text + HEADER_BYTES, bytes);
    free(text);
    return rc;
}

/* Splits "HOST:PORT" (host may be [v6 address]). */
static int parse_host_port(const char *spec, char *host, size_t cap, char *port, size_t port_cap, TnError *err) {
    const char *colon = strrchr(spec, ':');
    size_t length = colon ? (size_t)(colon - spec) : 0;
    if (length && spec[0] == '[' && spec[length - 1] == ']') spec++, length -= 2;
    if (!colon || !length || length >= cap || !colon[1] || strlen(colon + 1) >= port_cap ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return tn_fail(err, "--dist-init tcp://%s: give tcp://HOST:PORT", spec);
    memcpy(host, spec, length);
    host[length] = '\0';
    snprintf(port, port_cap, "%s", colon + 1);
    return 0;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready, 0 timed out. */
static int wait_ready(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - tn_now();
        if (left <= 0) return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n > 0) return 1;
        if (n < 0 && errno != EINTR) return 0;
    }
}

/* Sends or receives exactly n bytes before the deadline. */
static int transfer(int fd, void *data, size_t n, int sending, double deadline) {
    unsigned char *at = data;
    while (n > 0) {
        if (!wait_ready(fd, sending ? POLLOUT : POLLIN, deadline)) return -1;
        ssize_t done = sending ? send(fd, at, n, MSG_NOSIGNAL) : recv(fd, at, n, 0);
        if (done < 0 && errno == EINTR) continue;
        if (done <= 0) return -1;
        at += done;
        n -= (size_t)done;
    }
    return 0;
}

static int serve_tcp(const char *port, int size, unsigned char *message, size_t total, double timeout_s,
                     TnError *err) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *found;
    int rc = getaddrinfo(NULL, port, &hints, &found);
    if (rc) return tn_fail(err, "--dist-init tcp: port %s: %s", port, gai_strerror(rc));
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol), yes = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes) ||
        bind(fd, found->ai_addr, found->ai_addrlen) || listen(fd, size)) {
        rc = tn_fail(err, "--dist-init tcp: rank 0 cannot listen on port %s: %s", port, strerror(errno));
        freeaddrinfo(found);
        if (fd >= 0) close(fd);
        return rc;
    }
    freeaddrinfo(found);
    double deadline = tn_now() + timeout_s;
    for (int served = 0; served < size - 1 && !rc; served++) {
        int peer = wait_ready(fd, POLLIN, deadline) ? accept(fd, NULL, NULL) : -1;
        if (peer < 0) {
            rc = tn_fail(err, "--dist-init tcp: %d of %d ranks connected to port %s within %.0f s", served, size - 1,
                         port, timeout_s);
            break;
        }
        if (transfer(peer, message, total, 1, deadline))
            rc = tn_fail(err, "--dist-init tcp: sending the id on port %s failed", port);
        close(peer);
    }
    close(fd);
    return rc;
}

/* Connects to host:port, retrying until the deadline (rank 0 may start
 * later); returns the socket or -1. */
static int connect_retrying(const char *host, const char *port, double deadline) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *found, *a;
    for (; tn_now() < deadline; pause_briefly()) {
        if (getaddrinfo(host, port, &hints, &found)) continue;
        for (a = found; a; a = a->ai_next) {
            int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
            if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
                freeaddrinfo(found);
                return fd;
            }
            if (fd >= 0) close(fd);
        }
        freeaddrinfo(found);
    }
    return -1;
}

static int share_by_tcp(const char *spec, int rank, int size, void *id, size_t bytes, double timeout_s, TnError *err) {
    char host[256], port[16];
    if (parse_host_port(spec, host, sizeof host, port, sizeof port, err)) return -1;
    size_t total = HEADER_BYTES + bytes;
    unsigned char *message = rank == 0 ? encode_message(id, bytes) : tn_malloc(total);
    int rc;
    if (rank == 0) {
        rc = serve_tcp(port, size, message, total, timeout_s, err);
    } else {
        double deadline = tn_now() + timeout_s;
        int fd = connect_retrying(host, port, deadline);
        if (fd < 0) rc = tn_fail(err, "--dist-init tcp://%s: rank 0 did not answer within %.0f s", spec, timeout_s);
        else if (transfer(fd, message, total, 0, deadline))
            rc = tn_fail(err, "--dist-init tcp://%s: the connection closed before the id arrived", spec);
        else if (!(rc = check_header(message, bytes, spec, err)))
            memcpy(id, message + HEADER_BYTES, bytes);
        if (fd >= 0) close(fd);
    }
    free(message);
    return rc;
}

int tn_launch_share_id(const char *init, int rank, int size, void *id, size_t bytes, double timeout_s,
                       TnError *err) {
    if (!init) return tn_fail(err, "a launch without MPI needs --dist-init file:PATH or tcp://HOST:PORT");
    if (strncmp(init, "file:", 5) == 0 && init[5]) return share_by_file(init + 5, rank, id, bytes, timeout_s, err);
    if (strncmp(init, "tcp://", 6) == 0) return share_by_tcp(init + 6, rank, size, id, bytes, timeout_s, err);
    return tn_fail(err, "--dist-init %s: give file:PATH or tcp://HOST:PORT", init);
}

void tn_launch_cleanup(const char *init, int rank) {
    if (rank == 0 && init && strncmp(init, "file:", 5) == 0) unlink(init + 5);
}
