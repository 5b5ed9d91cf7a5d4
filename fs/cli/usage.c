/*
 * usage - the longer --help texts: those of the commands that take the
 * cluster options (mount, serve), of `caskfs cluster`, bench and fsck. Data
 * only; main.c prints them. Usage reference: docs/USAGE.md.
 */
#include "cli_i.h"

#define CLUSTER_USAGE \
    "cluster options (docs/PROTOCOL.md, docs/USAGE.md):\n" \
    "  --listen HOST:PORT         serve the node protocol here (a non-loopback\n" \
    "                             address needs --secret-file or --tls-*)\n" \
    "  --peers HOST:PORT,...      the other nodes of the cluster\n" \
    "  --replicas N               copies of each object (default 3)\n" \
    "  --write-quorum W           acknowledgements a put waits for (default 2)\n" \
    "  --read-quorum R            replicas a get asks before answering (default 1)\n" \
    "  --secret-file FILE         shared secret the nodes authenticate with\n" \
    CLI_TLS_USAGE_NODE \
    "  --threads N                server event loops (default 4)\n" \
    "  --timeout-ms MS            per-request timeout towards peers (default 800)\n" \
    "  --sync-interval SECONDS    anti-entropy with every peer this often\n" \
    "                             (default 60, 0 for never)\n" \
    "  --rebalance-rate MIB       MiB/s this node moves buckets at after a change\n" \
    "                             of the cluster map (default 64)\n" \
    "  --syslog                   messages to syslog (daemon facility) with levels\n" \
    "  --log-level LEVEL          error, warn or info (default): drop the ones below\n" \
    "  --scrub-rate BYTES[K|M|G]  the scrubber reads at most this a second (default\n" \
    "                             4M; 0: no scrubber)\n" \
    "  --scrub-interval SECONDS   a scrub pass every this often (default 604800)\n" \
    "  --no-expiry                memcache EXPTIME ignored: nothing ever expires\n" \
    "  --allow-flush              serve flush_all (deletes every key this node holds)\n" \
    "Settings can also be kept in DATA_DIR/node.conf, one \"name = value\" per line\n" \
    "with the long option names; the command line wins over it.\n" \
    "N, W and R are clamped to the number of nodes; the node prints what it runs with.\n"

const char cli_usage_mount[] =
    "usage: caskfs mount [OPTIONS] DATA_DIR MOUNTPOINT\n"
    "\n"
    "Serves DATA_DIR (created when missing) as a filesystem on MOUNTPOINT, in the\n"
    "background unless -f. Unmount with 'fusermount3 -u MOUNTPOINT' or SIGTERM.\n"
    "\n"
    "options:\n"
    "  -f, --foreground           stay in the foreground, messages to stderr\n"
    "  -o OPT[,OPT...]            more FUSE mount options\n"
    "  --sync always|batch|none   durability of the log (default batch)\n"
    "  --node-id N                this node's id, 1 to 65535 (default 1)\n"
    "  --log FILE                 where the background daemon writes messages\n"
    "  --writeback                the kernel's writeback cache: faster small writes,\n"
    "                             slower opens (see docs/USAGE.md)\n"
    "  --segment-size BYTES       roll log segments at this size (default 268435456)\n"
    "  --uring on|off|auto        FUSE requests over io_uring, served on the CPU that\n"
    "                             made them (auto, the default: where the kernel\n"
    "                             allows; on: refuse to mount where it does not)\n"
    "  -h, --help                 this text\n"
    "\n" CLUSTER_USAGE
    "\n"
    "Exit status: 0 mounted (or, with -f, unmounted cleanly), 2 bad usage,\n"
    "3 DATA_DIR in use, the mountpoint busy, or another error.\n";

const char cli_usage_serve[] =
    "usage: caskfs serve [OPTIONS] DATA_DIR\n"
    "\n"
    "Serves DATA_DIR (created when missing) as a node: the memcache text protocol\n"
    "and the cluster extensions on --listen (default 127.0.0.1:7700), in the\n"
    "foreground, until SIGINT or SIGTERM.\n"
    "\n"
    "options:\n"
    "  --sync always|batch|none   durability of the log (default batch)\n"
    "  --node-id N                this node's id, 1 to 65535 (default: derived from\n"
    "                             --listen when there are peers, else 1)\n"
    "  --segment-size BYTES       roll log segments at this size (default 268435456)\n"
    "  -h, --help                 this text\n"
    "\n" CLUSTER_USAGE
    "\n"
    "Exit status: 0 stopped cleanly, 2 bad usage, 3 DATA_DIR in use or the\n"
    "address taken, or another error.\n";

const char cli_usage_cluster[] =
    "usage: caskfs cluster [OPTIONS] show NODE\n"
    "       caskfs cluster [OPTIONS] add NODE HOST:PORT\n"
    "       caskfs cluster [OPTIONS] remove NODE HOST:PORT\n"
    "\n"
    "NODE is any member of the cluster: its HOST:PORT, or the DATA_DIR of a node\n"
    "running on this machine. show prints the cluster map and how each node answers.\n"
    "add makes the node at HOST:PORT (running, started with --listen HOST:PORT and\n"
    "--peers naming any member) a member; remove ends a member's membership, whether\n"
    "it runs or is gone for good. Both wait until the buckets that changed owners\n"
    "are on their new owners (N copies again) and the old copies are gone.\n"
    "\n"
    "options:\n"
    "  --no-wait              return once the map changed; the move goes on\n"
    "  --timeout SECONDS      give up waiting after this long (exit status 3)\n"
    "  --secret-file FILE     authenticate to the nodes\n" CLI_TLS_USAGE_SYNC
    "  -h, --help             this text\n"
    "\n"
    "Exit status: 0 done, 1 not a member (remove), 2 bad usage, 3 a node\n"
    "unreachable or not done in time.\n";

const char cli_usage_bench[] =
    "usage: caskfs bench [OPTIONS] MOUNTPOINT\n"
    "\n"
    "Runs the standard workloads on the caskfs mount MOUNTPOINT and, in the same\n"
    "run, in a native directory beside its DATA_DIR (same disk) and on a null FUSE\n"
    "filesystem, in rounds that alternate the order of the three, and prints the\n"
    "medians of the per-round ratios to native. Every block written is new bytes;\n"
    "the one deduplication workload says so. Needs root to drop caches for the\n"
    "cold figures; uses rsync, cp, find, du, nginx and wrk when installed.\n"
    "\n"
    "options:\n"
    "  --size MIB     sequential workload size; trees are scaled from it (default 256)\n"
    "  --files N      small and empty files created (default 10000)\n"
    "  --rounds N     rounds of each workload in each place (default 4)\n"
    "  --tree DIRS    the small-file tree, comma-separated directories rsync'ed in\n"
    "                 (default /usr/include,/usr/share/doc)\n"
    "  --only NAMES   comma-separated workloads: seq, small, empty, big, fsync,\n"
    "                 media, dedup, tree, nginx (default: all)\n"
    "  -h, --help     this text\n";

const char cli_usage_fsck[] =
    "usage: caskfs fsck [--repair [--peers HOST:PORT,...] [--secret-file FILE] [--tls-* FILE]] DATA_DIR\n"
    "\n"
    "Checks DATA_DIR (not in use): what opening it had to fix, every record of\n"
    "every segment against its checksum and its hint file, every chunk every file\n"
    "names (present, long enough), link counts against the directory entries,\n"
    "inodes no name leads to. One line per problem.\n"
    "\n"
    "  --repair           rebuild hint files that disagree, fetch damaged or\n"
    "                     missing objects from --peers (hash checked), rewrite link\n"
    "                     counts, move orphans to /lost+found; then check again\n"
    "  --peers LIST       nodes holding good copies (HOST:PORT,...)\n"
    "  --secret-file FILE authenticate to them\n" CLI_TLS_USAGE
    "\n"
    "Exit status: 0 clean (after --repair: clean now), 1 problems remain, 2 bad\n"
    "usage, 3 DATA_DIR in use or unreadable.\n";

const char cli_usage_scrub[] =
    "usage: caskfs scrub [--now [--wait]] [--rate BYTES] [--secret-file FILE] DATA_DIR|HOST:PORT\n"
    "\n"
    "Every node re-reads its sealed log segments in the background (--scrub-rate,\n"
    "--scrub-interval of mount and serve), checks every record and chunk hash, and\n"
    "repairs a damaged copy from a peer. This shows how far it is and what it found;\n"
    "--now starts a pass at once, --wait waits for it to end. A DATA_DIR no node\n"
    "holds shows its scrub.state, or with --now is scrubbed here (at --rate bytes a\n"
    "second, default unthrottled), damage reported, not repaired.\n"
    "\n"
    "\n"
    "options:\n"
    "  --secret-file FILE authenticate to the node\n" CLI_TLS_USAGE
    "\n"
    "Exit status: 0, 2 bad usage, 3 unreachable, 4 damage left unrepaired.\n";
