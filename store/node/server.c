/*
 * server - the node server (server.h): its listening sockets (TCP, and the
 * control socket in DATA_DIR that needs no authentication), its event-loop
 * threads (conn.c), starting and stopping. The one idea: a node refuses to
 * listen beyond loopback without a shared secret or mutual TLS, and stopping
 * is one write to an eventfd every loop watches, so every thread wakes and
 * returns.
 * Protocol: docs/PROTOCOL.md.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "server_i.h"

static bool sa_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

int server_addr_is_loopback(const char *addr)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	int loop = 1;

	if (mc_split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0 ||
	    getaddrinfo(host, port, &hints, &res) != 0)
		return -EINVAL;
	for (ai = res; ai; ai = ai->ai_next)
		loop &= sa_loopback(ai->ai_addr);
	freeaddrinfo(res);
	return loop;
}

static int bind_listen(const char *addr)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *res;
	int fd, one = 1, rc;

	if (mc_split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0 ||
	    getaddrinfo(host, port, &hints, &res) != 0) {
		fprintf(stderr, "caskfs: cannot resolve listen address %s\n", addr);
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(res);
		return rc;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		rc = -errno;
		fprintf(stderr, "caskfs: cannot listen on %s: %s\n", addr, strerror(errno));
		freeaddrinfo(res);
		close(fd);
		return rc;
	}
	freeaddrinfo(res);
	return fd;
}

static int bind_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	/* a socket left by a process that died: DATA_DIR's lock says it is ours now */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(077);
	rc = bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0 ? -errno : 0;
	umask(old);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Every connection holds a descriptor: let the process have as many as the
 * hard limit allows (the soft limit is often 1024). */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "caskfs: cannot raise the limit of open files: %s\n",
				strerror(errno));
	}
}

int server_start(struct store *s, struct cluster *c, const struct server_options *opt,
		 struct server **out)
{
	struct server *srv;
	int rc, loopback = opt->listen ? server_addr_is_loopback(opt->listen) : 1;

	struct ssl_ctx_st *tls = NULL;
	char err[512];

	*out = NULL;
	if (loopback < 0) {
		fprintf(stderr, "caskfs: bad listen address %s (want HOST:PORT)\n", opt->listen);
		return -EINVAL;
	}
	if (!loopback && !opt->key && !(opt->tls.cert && opt->tls.key && opt->tls.ca)) {
		fprintf(stderr,
			"caskfs: refusing to listen on %s, which is not a loopback address, "
			"without --secret-file or mutual TLS (--tls-cert, --tls-key and --tls-ca): "
			"anyone who can reach it could read and change every object\n",
			opt->listen);
		return -EPERM;
	}
	if (tls_files_given(&opt->tls) && (rc = tls_server_ctx(&opt->tls, &tls, err, sizeof(err))) < 0) {
		fprintf(stderr, "caskfs: %s\n", err);
		return rc;
	}
	raise_nofile();
	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		tls_ctx_free(tls);
		return -ENOMEM;
	}
	srv->tls = tls;
	srv->store = s;
	srv->cluster = c;
	if (opt->key) {
		srv->key_copy = *opt->key;
		srv->key = &srv->key_copy;
	}
	srv->max_conns = opt->max_conns > 0 ? opt->max_conns : 10000;
	srv->ext = opt->ext;
	srv->stats_ext = opt->stats_ext;
	srv->ext_arg = opt->ext_arg;
	srv->no_expiry = opt->no_expiry;
	srv->allow_flush = opt->allow_flush;
	if (opt->no_expiry)
		store_set_no_expiry(s, true); /* and the times the store holds, too */
	srv->nloops = opt->threads > 0 ? opt->threads : 4;
	srv->started = time(NULL);
	srv->stopfd = -1;
	srv->ufd = -1;
	srv->lfd = opt->listen ? bind_listen(opt->listen) : -1;
	if (opt->listen && srv->lfd < 0) {
		rc = srv->lfd;
		tls_ctx_free(srv->tls);
		free(srv);
		return rc;
	}
	if (opt->control) {
		srv->ufd = bind_unix(opt->control);
		if (srv->ufd < 0)
			fprintf(stderr, "caskfs: no control socket %s: %s\n", opt->control,
				strerror(-srv->ufd));
		else
			snprintf(srv->upath, sizeof(srv->upath), "%s", opt->control);
	}
	srv->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	srv->loops = calloc((size_t)srv->nloops, sizeof(*srv->loops));
	if (srv->stopfd < 0 || !srv->loops) {
		rc = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < srv->nloops; i++) {
		srv->loops[i].wakefd = -1;
		pthread_mutex_init(&srv->loops[i].done_mu, NULL);
	}
	/* decided operations wait for other nodes: on workers, not in the loops
	 * (started for any node with an address: peers may join its map later) */
	if ((cluster_nodes(c) > 1 || cluster_self(c)[0]) &&
	    (rc = server_workers_start(srv)) < 0) {
		srv->nloops = 0; /* no loop thread started */
		goto fail;
	}
	for (int i = 0; i < srv->nloops; i++) {
		struct loop *l = &srv->loops[i];
		l->srv = srv;
		l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		l->ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event le = { .events = EPOLLIN | EPOLLEXCLUSIVE,
					  .data.ptr = &srv->lfd };
		struct epoll_event ue = { .events = EPOLLIN | EPOLLEXCLUSIVE,
					  .data.ptr = &srv->ufd };
		struct epoll_event se = { .events = EPOLLIN, .data.ptr = &srv->stopfd };
		struct epoll_event we = { .events = EPOLLIN, .data.ptr = &l->wakefd };
		if (l->ep < 0 || l->wakefd < 0 ||
		    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wakefd, &we) < 0 ||
		    (srv->lfd >= 0 && epoll_ctl(l->ep, EPOLL_CTL_ADD, srv->lfd, &le) < 0) ||
		    (srv->ufd >= 0 && epoll_ctl(l->ep, EPOLL_CTL_ADD, srv->ufd, &ue) < 0) ||
		    epoll_ctl(l->ep, EPOLL_CTL_ADD, srv->stopfd, &se) < 0 ||
		    pthread_create(&l->thread, NULL, server_loop_main, l) != 0) {
			rc = -errno ? -errno : -EAGAIN;
			if (l->ep >= 0)
				close(l->ep);
			if (l->wakefd >= 0)
				close(l->wakefd);
			l->ep = -1;
			srv->nloops = i;
			goto fail;
		}
	}
	*out = srv;
	return 0;
fail:
	server_stop(srv);
	return rc;
}

void server_stop(struct server *srv)
{
	if (!srv)
		return;
	uint64_t one = 1;
	if (srv->stopfd >= 0 && write(srv->stopfd, &one, sizeof(one)) < 0)
		fprintf(stderr, "caskfs: cannot signal the server threads: %s\n", strerror(errno));
	for (int i = 0; i < srv->nloops; i++)
		pthread_join(srv->loops[i].thread, NULL);
	/* the loops are gone: the workers' replies are dropped with their connections */
	server_workers_stop(srv);
	for (int i = 0; srv->loops && i < srv->nloops; i++) {
		struct loop *l = &srv->loops[i];
		if (l->wakefd >= 0)
			server_worker_drop(l);
		while (l->conns)
			server_conn_close(l, l->conns);
		close(l->ep);
		if (l->wakefd >= 0)
			close(l->wakefd);
		pthread_mutex_destroy(&l->done_mu);
	}
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->ufd >= 0) {
		close(srv->ufd);
		unlink(srv->upath);
	}
	if (srv->stopfd >= 0)
		close(srv->stopfd);
	free(srv->loops);
	tls_ctx_free(srv->tls);
	free(srv);
}
