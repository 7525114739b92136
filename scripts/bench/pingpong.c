// HTTP-shaped TCP ping-pong over loopback in one thread pinned to one CPU, for
// scripts/bench-packet-cost.sh: what a capture agent adds per request on the load's CPU.
//
// One thread owns both ends of one keep-alive connection (TCP_NODELAY): write the request on
// the client socket, read it on the server socket, write the response, read it back. No other
// thread and no context switch is involved, so the time per round trip is the CPU cost of two
// data segments (and their ACK work) through the loopback stack, egress TC hooks and socket
// tracepoints included, without scheduler noise.
//
// The figure is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID: the loopback softirq work runs
// in the thread's context and is counted; time spent preempted by another process is not, so a
// build running meanwhile inflates the figure through shared caches only, not by its CPU share).
//
// Usage: pingpong PORT BODY_BYTES ROUNDTRIPS REPS [CPU]
// Prints one line per repetition (CPU and wall ns per round trip), then "min MIN median MEDIAN"
// of the CPU figures.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= (size_t)w;
  }
}

static void read_exact(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (r == 0) {
      fprintf(stderr, "pingpong: connection closed\n");
      exit(1);
    }
    got += (size_t)r;
  }
}

static double now_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: pingpong PORT BODY_BYTES ROUNDTRIPS REPS [CPU]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  size_t body = (size_t)atol(argv[2]);
  long rts = atol(argv[3]);
  int reps = atoi(argv[4]);
  if (argc > 5) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(atoi(argv[5]), &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
  }

  // A request of ~200 bytes and a response shaped like nginx's (headers + BODY_BYTES).
  char req[256];
  int rn = snprintf(req, sizeof req,
                    "GET /small.json HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: pingpong/1.0\r\n"
                    "Accept: application/json\r\nAccept-Encoding: identity\r\nX-Bench: packet-cost-0123456789\r\n"
                    "Connection: keep-alive\r\n\r\n",
                    port);
  char head[256];
  int hn = snprintf(head, sizeof head,
                    "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n",
                    body);
  size_t resp_len = (size_t)hn + body;
  char *resp = malloc(resp_len), *rbuf = malloc(resp_len), qbuf[256];
  if (!resp || !rbuf) die("malloc");
  memcpy(resp, head, (size_t)hn);
  for (size_t i = 0; i < body; i++) resp[hn + i] = (char)('a' + i % 26);

  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) die("socket");
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0) die("bind");
  if (listen(ls, 1) != 0) die("listen");
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (c < 0) die("socket");
  if (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
  int s = accept(ls, NULL, NULL);
  if (s < 0) die("accept");
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  double *per = calloc((size_t)reps, sizeof *per);
  if (!per) die("calloc");
  for (int r = -1; r < reps; r++) {  // r = -1: warm-up, not reported
    double t0 = now_ns(CLOCK_THREAD_CPUTIME_ID), w0 = now_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < rts; i++) {
      write_all(c, req, (size_t)rn);
      read_exact(s, qbuf, (size_t)rn);
      write_all(s, resp, resp_len);
      read_exact(c, rbuf, resp_len);
    }
    double ns = (now_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)rts;
    double wall = (now_ns(CLOCK_MONOTONIC) - w0) / (double)rts;
    if (r >= 0) {
      per[r] = ns;
      printf("cpu %.0f wall %.0f\n", ns, wall);
    }
  }
  qsort(per, (size_t)reps, sizeof *per, cmp);
  printf("min %.0f median %.0f\n", per[0], per[reps / 2]);
  close(c);
  close(s);
  close(ls);
  return 0;
}
