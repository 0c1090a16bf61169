/* The C floor for bench/run.sh: the least work a run of seed-zero-delay can be, so tcplab's
 * runs/s can be printed as a ratio against it, measured in the same run.
 *
 *   floor pooled N   one namespace and one capture socket for the batch; per run a fresh
 *                    server port, the exchange ("get" / "200 ok", both close at once), and
 *                    the capture read until it shows the teardown complete.
 *   floor fresh N    per run: fork, a new network namespace (lo up), a capture socket, the
 *                    same exchange on port 60000 and the same read; the child exits.
 *
 * Prints one line: "<mode> <runs> <seconds> <runs/s>". One run at a time (in fresh mode the
 * previous child's exit may still be in progress).
 * Root only (unshare(CLONE_NEWNET)); every namespace is private and goes with its last
 * process, so nothing outlives the program. Traffic is on 127.0.0.1 only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(2);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* A new network namespace for the calling process, its lo up. */
static void new_netns(void) {
  if (unshare(CLONE_NEWNET) != 0) die("unshare(CLONE_NEWNET)");
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) die("SIOCGIFFLAGS");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) die("SIOCSIFFLAGS");
  close(s);
}

/* A capture socket on lo (every frame, both directions). */
static int open_capture(void) {
  /* Protocol 0 here and ETH_P_ALL at bind: a socket made with ETH_P_ALL is hooked at once,
   * and re-hooking it at bind costs a synchronize_net() (libpcap does the same). */
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket(AF_PACKET)");
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)if_nametoindex("lo");
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) != 0) die("bind(AF_PACKET)");
  int rcv = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  return fd;
}

/* Serve and connect once on 127.0.0.1:port: the client sends "get", the server answers
 * "200 ok" and closes, the client closes after reading it. */
static void exchange(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0) die("socket");
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  if (listen(l, 1) != 0) die("listen");
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c < 0) die("socket");
  if (connect(c, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
  int s = accept(l, NULL, NULL);
  if (s < 0) die("accept");
  char buf[64];
  if (send(c, "get", 3, 0) != 3) die("send");
  if (recv(s, buf, sizeof buf, 0) <= 0) die("recv(server)");
  if (send(s, "200 ok", 6, 0) != 6) die("send");
  close(s);
  if (recv(c, buf, sizeof buf, 0) <= 0) die("recv(client)");
  close(c);
  close(l);
}

/* Read the capture until it shows port's teardown complete: a RST, or both FINs and then
 * an ACK from the side that did not send the second FIN. */
static void read_until_complete(int cap, int port) {
  unsigned char buf[2048];
  int fin_from[2] = {0, 0}; /* [0]: from the server port, [1]: to it */
  int last_fin = -1;
  for (;;) {
    struct pollfd p = {.fd = cap, .events = POLLIN};
    if (poll(&p, 1, 2000) <= 0) {
      fprintf(stderr, "floor: port %d: teardown not seen in 2 s\n", port);
      exit(1);
    }
    struct sockaddr_ll from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(cap, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (n < 0) die("recvfrom");
    if (from.sll_pkttype == PACKET_OUTGOING) continue; /* lo shows each frame twice */
    if (n < 14 + 20 + 20 || buf[12] != 0x08 || buf[13] != 0x00) continue;
    const struct iphdr *ip = (const void *)(buf + 14);
    if (ip->protocol != IPPROTO_TCP) continue;
    const struct tcphdr *t = (const void *)(buf + 14 + ip->ihl * 4);
    int dir;
    if (ntohs(t->source) == port) dir = 0;
    else if (ntohs(t->dest) == port) dir = 1;
    else continue;
    if (t->rst) return;
    if (fin_from[0] && fin_from[1] && t->ack && !t->fin && dir != last_fin) return;
    if (t->fin) {
      fin_from[dir] = 1;
      last_fin = dir;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: floor pooled|fresh N\n");
    return 2;
  }
  long n = atol(argv[2]);
  int pooled = strcmp(argv[1], "pooled") == 0;
  if (!pooled && strcmp(argv[1], "fresh") != 0) {
    fprintf(stderr, "floor: mode is pooled or fresh, not %s\n", argv[1]);
    return 2;
  }
  double t0 = now();
  if (pooled) {
    new_netns();
    int cap = open_capture();
    for (long i = 0; i < n; i++) {
      int port = 20000 + (int)(i % 12000);
      exchange(port);
      read_until_complete(cap, port);
    }
    close(cap);
  } else {
    /* The child says "done" through a pipe once its run is read; its exit (closing the
     * capture socket waits for an RCU grace period) and the namespace's teardown overlap
     * the next run, and the children are reaped as they finish. */
    long live = 0;
    for (long i = 0; i < n; i++) {
      int done[2];
      if (pipe2(done, O_CLOEXEC) != 0) die("pipe2");
      pid_t pid = fork();
      if (pid < 0) die("fork");
      if (pid == 0) {
        close(done[0]);
        new_netns();
        int cap = open_capture();
        exchange(60000);
        read_until_complete(cap, 60000);
        if (write(done[1], "k", 1) != 1) _exit(1);
        _exit(0);
      }
      close(done[1]);
      live++;
      char k;
      if (read(done[0], &k, 1) != 1) {
        fprintf(stderr, "floor: run %ld failed\n", i);
        return 1;
      }
      close(done[0]);
      int st;
      while (live > 0 && waitpid(-1, &st, live > 64 ? 0 : WNOHANG) > 0) live--;
    }
    int st;
    while (live > 0 && waitpid(-1, &st, 0) > 0) live--;
  }
  double dt = now() - t0;
  printf("%s %ld %.3f %.1f\n", argv[1], n, dt, n / dt);
  return 0;
}
