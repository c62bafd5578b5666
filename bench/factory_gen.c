/*
 * The factory bench's load generator (bench/factory.ts compiles it with `cc -O2` and runs it):
 * `count` MQTT 3.1.1 devices on raw non-blocking TCP sockets, one epoll loop, packets built by
 * hand. Written in C because a Deno generator (Deno.connect, one read and one write op per
 * message) cost about 30-85 us of CPU per message and, on a loaded 2-core machine, became the
 * bottleneck it was meant to measure; here a message costs a write(), a read() and its share
 * of an epoll_wait().
 *
 * usage: factory_gen HOST PORT FIRST COUNT TOTAL SECONDS CONNECT_RATE DRAIN_MS
 *
 * 1. Connects devices fac-FIRST .. fac-(FIRST+COUNT-1) (CONNECT: client id = device, clean
 *    session, keepalive 60) at CONNECT_RATE per second, each waiting for CONNACK 0 (3
 *    attempts, 1 s apart); then prints {"ready":true,...} on stdout.
 * 2. Reads one line from stdin: the start time, epoch ms.
 * 3. Device g (of TOTAL over all processes) publishes {"temp":...} at QoS 1 to
 *    twins/fac-g/telemetry once a second for SECONDS s, at start + g/TOTAL s within each
 *    second; packet id = message number (1...). PUBACK latency (from just before the write to
 *    the PUBACK's read) goes into a histogram of 1% buckets: bucket b holds values up to
 *    exp(b * ln 1.01) us (bench/histogram.ts reads the same buckets).
 * 4. Waits for the last PUBACKs (at most DRAIN_MS), prints the result as one JSON line, and
 *    once stdin ends sends DISCONNECT on every connection and exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { IDLE, CONNECTING, WAIT_CONNACK, UP, DEAD };
#define BUCKETS 4096
#define IN_MAX 512

typedef struct {
  int fd, state, attempts, sent, acked;
  double retry_at;       /* ms, monotonic: next connect attempt */
  double *times;         /* per message: write time (ms), 0 before, -1 once acked */
  unsigned char in[IN_MAX];
  int in_len;
} Device;

static Device *dev;
static int first, count, total, seconds;
static long hist[BUCKETS], late[BUCKETS];
static double hist_max, late_max;
static long acked_all, unexpected, connect_failures;
static struct sockaddr_in addr;
static int ep;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void record(long *h, double *max, double ms) {
  double us = ms * 1000;
  int b = us <= 1 ? 0 : (int)ceil(log(us) / log(1.01));
  if (b >= BUCKETS) b = BUCKETS - 1;
  h[b]++;
  if (ms > *max) *max = ms;
}

static int put_len(unsigned char *p, int n) {
  int i = 0;
  do {
    unsigned char b = n % 128;
    n /= 128;
    if (n > 0) b |= 128;
    p[i++] = b;
  } while (n > 0);
  return i;
}

/* Writes all of p or marks the device dead (a 40-byte packet on a loopback socket either
   fits its send buffer or the peer has stopped reading for good). */
static void send_all(Device *d, const unsigned char *p, int n) {
  while (n > 0) {
    ssize_t w = send(d->fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      d->state = DEAD;
      return;
    }
  }
}

static void send_connect(Device *d, int g) {
  unsigned char p[64];
  char id[32];
  int idlen = snprintf(id, sizeof id, "fac-%d", g);
  int rest = 10 + 2 + idlen, o = 0;
  p[o++] = 0x10;
  o += put_len(p + o, rest);
  const unsigned char vh[10] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60};
  memcpy(p + o, vh, 10);
  o += 10;
  p[o++] = idlen >> 8;
  p[o++] = idlen & 255;
  memcpy(p + o, id, idlen);
  send_all(d, p, o + idlen);
}

static void send_publish(Device *d, int g, int r) {
  unsigned char p[128];
  char topic[64], body[32];
  int tl = snprintf(topic, sizeof topic, "twins/fac-%d/telemetry", g);
  int bl = snprintf(body, sizeof body, "{\"temp\":%.1f}", 15 + ((g + r) % 200) / 10.0);
  int rest = 2 + tl + 2 + bl, o = 0, id = r + 1;
  p[o++] = 0x32;
  o += put_len(p + o, rest);
  p[o++] = tl >> 8;
  p[o++] = tl & 255;
  memcpy(p + o, topic, tl);
  o += tl;
  p[o++] = id >> 8;
  p[o++] = id & 255;
  memcpy(p + o, body, bl);
  o += bl;
  d->times[r] = now_ms();
  d->sent++;
  send_all(d, p, o);
}

static void fail(Device *d, const char *why) {
  if (d->fd >= 0) close(d->fd);
  d->fd = -1;
  connect_failures++;
  if (connect_failures <= 5 || connect_failures % 1000 == 0)
    fprintf(stderr, "[factory gen] fac-%d: attempt %d: %s (%ld failed)\n", first + (int)(d - dev),
            d->attempts, why, connect_failures);
  d->state = d->attempts < 3 ? IDLE : DEAD;
  d->retry_at = now_ms() + 1000;
}

static void start_connect(Device *d) {
  d->attempts++;
  d->in_len = 0;
  d->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (d->fd < 0) return fail(d, strerror(errno));
  int one = 1;
  setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(d->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
    return fail(d, strerror(errno));
  struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = d};
  epoll_ctl(ep, EPOLL_CTL_ADD, d->fd, &e);
  d->state = CONNECTING;
}

/* Splits d->in into packets: any number per read, a packet split over reads. */
static void parse(Device *d) {
  int off = 0;
  while (off < d->in_len) {
    int len = 0, mul = 1, i = off + 1, complete = 0;
    while (i < d->in_len && i - off <= 4) {
      unsigned char b = d->in[i++];
      len += (b & 127) * mul;
      mul *= 128;
      if (!(b & 128)) {
        complete = 1;
        break;
      }
    }
    if (!complete || d->in_len - i < len) break;
    int type = d->in[off] >> 4;
    unsigned char *body = d->in + i;
    if (type == 2 && len >= 2) {
      if (d->state == WAIT_CONNACK) {
        if (body[1] == 0) d->state = UP;
        else fail(d, "CONNACK refused");
      }
    } else if (type == 4 && len >= 2) {
      int k = ((body[0] << 8) | body[1]) - 1;
      if (k >= 0 && k < seconds && d->times[k] > 0) {
        record(hist, &hist_max, now_ms() - d->times[k]);
        d->times[k] = -1;
        d->acked++;
        acked_all++;
      } else unexpected++;
    } else if (type != 13) unexpected++;
    off = i + len;
  }
  memmove(d->in, d->in + off, d->in_len - off);
  d->in_len -= off;
}

static void on_event(Device *d, unsigned events) {
  if (d->state == CONNECTING) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err || (events & (EPOLLERR | EPOLLHUP))) return fail(d, err ? strerror(err) : "hangup");
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = d};
    epoll_ctl(ep, EPOLL_CTL_MOD, d->fd, &e);
    d->state = WAIT_CONNACK;
    send_connect(d, first + (int)(d - dev));
    return;
  }
  for (;;) {
    ssize_t n = read(d->fd, d->in + d->in_len, IN_MAX - d->in_len);
    if (n > 0) {
      d->in_len += n;
      parse(d);
      if (d->in_len == IN_MAX) d->state = DEAD; /* a packet we cannot hold: not expected */
      if (d->state == IDLE || d->state == DEAD) return;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (d->state == WAIT_CONNACK) return fail(d, "closed before CONNACK");
    d->state = DEAD;
    epoll_ctl(ep, EPOLL_CTL_DEL, d->fd, NULL);
    return;
  }
}

/* One epoll round, waiting at most timeout_ms. */
static void poll_once(int timeout_ms) {
  struct epoll_event evs[256];
  int n = epoll_wait(ep, evs, 256, timeout_ms);
  for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
}

static void print_hist(const char *name, long *h, double max) {
  long n = 0;
  printf("\"%s\":{\"buckets\":[", name);
  int sep = 0;
  for (int b = 0; b < BUCKETS; b++) {
    if (!h[b]) continue;
    printf("%s[%d,%ld]", sep ? "," : "", b, h[b]);
    sep = 1;
    n += h[b];
  }
  printf("],\"count\":%ld,\"max\":%.3f}", n, max);
}

int main(int argc, char **argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: factory_gen HOST PORT FIRST COUNT TOTAL SECONDS RATE DRAIN_MS\n");
    return 2;
  }
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, argv[1], &addr.sin_addr);
  addr.sin_port = htons(atoi(argv[2]));
  first = atoi(argv[3]);
  count = atoi(argv[4]);
  total = atoi(argv[5]);
  seconds = atoi(argv[6]);
  double rate = atof(argv[7]), drain = atof(argv[8]);
  dev = calloc(count, sizeof *dev);
  for (int i = 0; i < count; i++) {
    dev[i].fd = -1;
    dev[i].times = calloc(seconds, sizeof(double));
  }
  ep = epoll_create1(0);

  /* connect */
  double t0 = now_ms();
  int next = 0, progress = 0;
  for (;;) {
    double t = now_ms();
    while (next < count && t >= t0 + next * 1000.0 / rate) start_connect(&dev[next++]);
    int settled = 0, up = 0;
    for (int i = 0; i < next; i++) {
      Device *d = &dev[i];
      if (d->state == IDLE && t >= d->retry_at) start_connect(d);
      if (d->state == UP || d->state == DEAD) settled++;
      if (d->state == UP) up++;
    }
    if (up / 1000 > progress) {
      progress = up / 1000;
      fprintf(stderr, "[factory gen] %d of %d connected\n", up, count);
    }
    if (next == count && settled == count) break;
    poll_once(2);
  }
  int connected = 0;
  for (int i = 0; i < count; i++) connected += dev[i].state == UP;
  printf("{\"ready\":true,\"connected\":%d,\"connectFailures\":%ld,\"connectSecs\":%.3f}\n",
         connected, connect_failures, (now_ms() - t0) / 1000);
  fflush(stdout);

  /* the start time */
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return 1;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  double start = now_ms() + (atof(line) - (tv.tv_sec * 1e3 + tv.tv_usec / 1e3));

  /* publish */
  long sent_all = 0;
  for (int r = 0; r < seconds; r++) {
    for (int i = 0; i < count; i++) {
      double due = start + r * 1000.0 + (first + i) * 1000.0 / total;
      for (double t = now_ms(); t < due; t = now_ms()) poll_once((int)ceil(due - t));
      Device *d = &dev[i];
      if (d->state != UP) continue;
      record(late, &late_max, now_ms() - due);
      send_publish(d, first + i, r);
      sent_all++;
    }
  }
  double end = now_ms() + drain;
  while (acked_all < sent_all && now_ms() < end) poll_once(5);
  double secs = (now_ms() - start) / 1000;

  int dropped = 0;
  for (int i = 0; i < count; i++) dropped += dev[i].state == DEAD && dev[i].sent > 0;
  printf("{\"devices\":%d,\"connected\":%d,\"connectFailures\":%ld,\"dropped\":%d,"
         "\"sent\":%ld,\"acked\":%ld,\"unexpected\":%ld,\"sentPer\":[",
         count, connected, connect_failures, dropped, sent_all, acked_all, unexpected);
  for (int i = 0; i < count; i++) printf("%s%d", i ? "," : "", dev[i].sent);
  printf("],\"ackedPer\":[");
  for (int i = 0; i < count; i++) printf("%s%d", i ? "," : "", dev[i].acked);
  printf("],");
  print_hist("latency", hist, hist_max);
  printf(",");
  print_hist("late", late, late_max);
  printf(",\"secs\":%.3f}\n", secs);
  fflush(stdout);

  /* once stdin ends: disconnect */
  while (fgets(line, sizeof line, stdin)) {
  }
  const unsigned char disconnect[2] = {0xe0, 0};
  for (int i = 0; i < count; i++) {
    if (dev[i].state == UP) send_all(&dev[i], disconnect, 2);
    if (dev[i].fd >= 0) close(dev[i].fd);
  }
  return 0;
}
