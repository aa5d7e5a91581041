/*
 * kubess-nfs-fuse: userspace NFSv4 client exposed through FUSE, used by the
 * real node of the local test bed in place of the kernel NFS client (the
 * test bed kernel has none).
 *
 *   kubess-nfs-fuse SERVER:/PATH TARGET [-o opt[,opt...]] [-f]
 *
 * Transport, XDR and AUTH_SYS come from libnfs (4.0); the NFSv4.0 COMPOUNDs
 * are built here.  Every request carries the credentials of the process that
 * made the FUSE request (uid, gid, supplementary groups), so the server
 * decides access and squashes root exactly as it would for the kernel
 * client.  I/O and SETATTR use the anonymous stateid, so no lease has to be
 * kept alive; OPEN is used only to create regular files and is closed at
 * once.  Byte-range and flock locks stay local to the host (the kernel's
 * FUSE layer handles them), as with the kernel client's local_lock=all.
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#define PROG "kubess-nfs-fuse"
#define EXIT_MOUNT_FAILURE 32 /* what mount.nfs returns for a failed mount */
#define EXIT_USAGE 1
#define MAX_CONNS 16
#define MAX_OPS 64
#define MAX_LOOKUPS 40 /* path components resolved in one COMPOUND */
/* bytes of names per COMPOUND: libnfs 4.0 encodes one into 4 KiB */
#define LOOKUP_BYTES 1200
#define AUTH_MAX_GROUPS 16 /* AUTH_SYS carries at most 16 groups */
#define ANON_ID 65534
#define RETRY_DEADLINE_S 120 /* NFS4ERR_DELAY / NFS4ERR_GRACE */
#define PROBE_TIMEOUT_S 30   /* first stat of a new mount */

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

static struct {
	char *server;
	char *export_path;
	char *source; /* SERVER:/PATH as given */
	char *target;
	int port;
	int nconn;
	int foreground;
	int debug;
	int read_only;
	double attr_timeout;
	double entry_timeout;
	uint32_t rsize;
	uint32_t wsize;
	char fuse_flags[256]; /* ro,nosuid,... passed to the FUSE mount */
} cfg = {
	.port = 2049,
	.nconn = 4,
	.attr_timeout = 1.0,
	.entry_timeout = 1.0,
};

static int daemonized;

static void logmsg(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void logmsg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (daemonized) {
		vsyslog(prio, fmt, ap);
	} else {
		fprintf(stderr, PROG ": ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Credentials                                                         */

struct creds {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	uint32_t groups[AUTH_MAX_GROUPS];
};

static int creds_equal(const struct creds *a, const struct creds *b)
{
	return a->uid == b->uid && a->gid == b->gid &&
	       a->ngroups == b->ngroups &&
	       memcmp(a->groups, b->groups,
		      a->ngroups * sizeof(a->groups[0])) == 0;
}

/* uid, gid and supplementary groups of the process behind this request. */
static void caller_creds(struct creds *c)
{
	struct fuse_context *ctx = fuse_get_context();
	gid_t list[AUTH_MAX_GROUPS];
	int n = 0;

	memset(c, 0, sizeof(*c));
	c->uid = ctx->uid;
	c->gid = ctx->gid;
	if (ctx->pid > 0) {
		n = fuse_getgroups(AUTH_MAX_GROUPS, list);
		if (n < 0)
			n = 0; /* the process has gone: primary ids only */
		if (n > AUTH_MAX_GROUPS)
			n = AUTH_MAX_GROUPS; /* AUTH_SYS limit */
	}
	for (int i = 0; i < n; i++)
		c->groups[i] = list[i];
	c->ngroups = (uint32_t)n;
}

/* ------------------------------------------------------------------ */
/* Attributes (fattr4)                                                 */

#define BIT(a) (1ULL << (a))
#define STD_ATTRS                                                             \
	(BIT(FATTR4_TYPE) | BIT(FATTR4_CHANGE) | BIT(FATTR4_SIZE) |           \
	 BIT(FATTR4_FSID) | BIT(FATTR4_FILEID) | BIT(FATTR4_MODE) |           \
	 BIT(FATTR4_NUMLINKS) | BIT(FATTR4_OWNER) | BIT(FATTR4_OWNER_GROUP) | \
	 BIT(FATTR4_RAWDEV) | BIT(FATTR4_SPACE_USED) |                        \
	 BIT(FATTR4_TIME_ACCESS) | BIT(FATTR4_TIME_METADATA) |                \
	 BIT(FATTR4_TIME_MODIFY))
#define STATFS_ATTRS                                                        \
	(BIT(FATTR4_FILES_AVAIL) | BIT(FATTR4_FILES_FREE) |                 \
	 BIT(FATTR4_FILES_TOTAL) | BIT(FATTR4_MAXNAME) |                     \
	 BIT(FATTR4_SPACE_AVAIL) | BIT(FATTR4_SPACE_FREE) |                  \
	 BIT(FATTR4_SPACE_TOTAL))
#define FSINFO_ATTRS \
	(BIT(FATTR4_TYPE) | BIT(FATTR4_MAXREAD) | BIT(FATTR4_MAXWRITE))

struct nattr {
	uint64_t have;
	uint32_t type, mode, nlink, maxname;
	uint32_t uid, gid, rdev_major, rdev_minor;
	uint64_t change, size, fileid, used, maxread, maxwrite;
	uint64_t files_avail, files_free, files_total;
	uint64_t space_avail, space_free, space_total;
	struct timespec atime, mtime, ctime;
};

struct xdr_in {
	const unsigned char *p;
	size_t left;
};

static int xget32(struct xdr_in *x, uint32_t *v)
{
	if (x->left < 4)
		return -1;
	*v = ((uint32_t)x->p[0] << 24) | ((uint32_t)x->p[1] << 16) |
	     ((uint32_t)x->p[2] << 8) | x->p[3];
	x->p += 4;
	x->left -= 4;
	return 0;
}

static int xget64(struct xdr_in *x, uint64_t *v)
{
	uint32_t hi, lo;

	if (xget32(x, &hi) || xget32(x, &lo))
		return -1;
	*v = ((uint64_t)hi << 32) | lo;
	return 0;
}

static int xgettime(struct xdr_in *x, struct timespec *ts)
{
	uint64_t s;
	uint32_t ns;

	if (xget64(x, &s) || xget32(x, &ns))
		return -1;
	ts->tv_sec = (time_t)(int64_t)s;
	ts->tv_nsec = ns;
	return 0;
}

/* Owners travel as numeric strings (Only_Numeric_Owners on the server). */
static int xgetowner(struct xdr_in *x, uint32_t *id)
{
	uint32_t len, padded;
	char buf[32];
	char *end;
	unsigned long v;

	if (xget32(x, &len))
		return -1;
	padded = (len + 3) & ~3U;
	if (x->left < padded)
		return -1;
	*id = ANON_ID;
	if (len > 0 && len < sizeof(buf)) {
		memcpy(buf, x->p, len);
		buf[len] = '\0';
		errno = 0;
		v = strtoul(buf, &end, 10);
		if (errno == 0 && *end == '\0' && v <= UINT32_MAX)
			*id = (uint32_t)v;
	}
	x->p += padded;
	x->left -= padded;
	return 0;
}

static int parse_fattr(const fattr4 *fa, struct nattr *a)
{
	struct xdr_in x = { (const unsigned char *)fa->attr_vals.attrlist4_val,
			    fa->attr_vals.attrlist4_len };
	uint64_t mask = 0, dummy;
	uint32_t d32;

	memset(a, 0, sizeof(*a));
	for (u_int w = 0; w < fa->attrmask.bitmap4_len && w < 2; w++)
		mask |= (uint64_t)fa->attrmask.bitmap4_val[w] << (32 * w);
	for (int bit = 0; bit < 64; bit++) {
		int r = 0;

		if (!(mask & BIT(bit)))
			continue;
		switch (bit) {
		case FATTR4_TYPE: r = xget32(&x, &a->type); break;
		case FATTR4_CHANGE: r = xget64(&x, &a->change); break;
		case FATTR4_SIZE: r = xget64(&x, &a->size); break;
		case FATTR4_FSID:
			r = xget64(&x, &dummy) || xget64(&x, &dummy);
			break;
		case FATTR4_LEASE_TIME: r = xget32(&x, &d32); break;
		case FATTR4_RDATTR_ERROR: r = xget32(&x, &d32); break;
		case FATTR4_FILEID: r = xget64(&x, &a->fileid); break;
		case FATTR4_FILES_AVAIL: r = xget64(&x, &a->files_avail); break;
		case FATTR4_FILES_FREE: r = xget64(&x, &a->files_free); break;
		case FATTR4_FILES_TOTAL: r = xget64(&x, &a->files_total); break;
		case FATTR4_MAXNAME: r = xget32(&x, &a->maxname); break;
		case FATTR4_MAXREAD: r = xget64(&x, &a->maxread); break;
		case FATTR4_MAXWRITE: r = xget64(&x, &a->maxwrite); break;
		case FATTR4_MODE: r = xget32(&x, &a->mode); break;
		case FATTR4_NUMLINKS: r = xget32(&x, &a->nlink); break;
		case FATTR4_OWNER: r = xgetowner(&x, &a->uid); break;
		case FATTR4_OWNER_GROUP: r = xgetowner(&x, &a->gid); break;
		case FATTR4_RAWDEV:
			r = xget32(&x, &a->rdev_major) ||
			    xget32(&x, &a->rdev_minor);
			break;
		case FATTR4_SPACE_AVAIL: r = xget64(&x, &a->space_avail); break;
		case FATTR4_SPACE_FREE: r = xget64(&x, &a->space_free); break;
		case FATTR4_SPACE_TOTAL: r = xget64(&x, &a->space_total); break;
		case FATTR4_SPACE_USED: r = xget64(&x, &a->used); break;
		case FATTR4_TIME_ACCESS: r = xgettime(&x, &a->atime); break;
		case FATTR4_TIME_METADATA: r = xgettime(&x, &a->ctime); break;
		case FATTR4_TIME_MODIFY: r = xgettime(&x, &a->mtime); break;
		default:
			return -EIO; /* an attribute that was not asked for */
		}
		if (r)
			return -EIO;
		a->have |= BIT(bit);
	}
	return 0;
}

static void nattr_to_stat(const struct nattr *a, struct stat *st)
{
	static const mode_t types[] = {
		[NF4REG] = S_IFREG,  [NF4DIR] = S_IFDIR,   [NF4BLK] = S_IFBLK,
		[NF4CHR] = S_IFCHR,  [NF4LNK] = S_IFLNK,   [NF4SOCK] = S_IFSOCK,
		[NF4FIFO] = S_IFIFO,
	};

	memset(st, 0, sizeof(*st));
	st->st_mode = (a->type >= 1 && a->type <= NF4FIFO ? types[a->type]
							  : S_IFREG) |
		      (a->mode & 07777);
	st->st_ino = a->fileid;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((a->used + 511) / 512);
	st->st_rdev = makedev(a->rdev_major, a->rdev_minor);
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

/* Encoder for the attributes we set (in attribute-number order). */
struct fattr_out {
	uint32_t mask[2];
	unsigned char buf[160];
	size_t len;
};

static void xput32(struct fattr_out *o, uint32_t v)
{
	o->buf[o->len++] = (unsigned char)(v >> 24);
	o->buf[o->len++] = (unsigned char)(v >> 16);
	o->buf[o->len++] = (unsigned char)(v >> 8);
	o->buf[o->len++] = (unsigned char)v;
}

static void xput64(struct fattr_out *o, uint64_t v)
{
	xput32(o, (uint32_t)(v >> 32));
	xput32(o, (uint32_t)v);
}

static void xputowner(struct fattr_out *o, uint32_t id)
{
	char s[16];
	int n = snprintf(s, sizeof(s), "%" PRIu32, id);

	xput32(o, (uint32_t)n);
	memcpy(o->buf + o->len, s, (size_t)n);
	o->len += (size_t)n;
	while (o->len % 4)
		o->buf[o->len++] = 0;
}

static void xputsettime(struct fattr_out *o, const struct timespec *ts)
{
	if (ts->tv_nsec == UTIME_NOW) {
		xput32(o, SET_TO_SERVER_TIME4);
	} else {
		xput32(o, SET_TO_CLIENT_TIME4);
		xput64(o, (uint64_t)(int64_t)ts->tv_sec);
		xput32(o, (uint32_t)ts->tv_nsec);
	}
}

#define SA_SIZE 0x01
#define SA_MODE 0x02
#define SA_UID 0x04
#define SA_GID 0x08
#define SA_ATIME 0x10
#define SA_MTIME 0x20

struct setattrs {
	unsigned what;
	uint64_t size;
	uint32_t mode, uid, gid;
	struct timespec atime, mtime;
};

static void encode_setattrs(const struct setattrs *s, struct fattr_out *o)
{
	memset(o, 0, sizeof(*o));
	if (s->what & SA_SIZE) {
		o->mask[0] |= 1U << FATTR4_SIZE;
		xput64(o, s->size);
	}
	if (s->what & SA_MODE) {
		o->mask[1] |= 1U << (FATTR4_MODE - 32);
		xput32(o, s->mode & 07777);
	}
	if (s->what & SA_UID) {
		o->mask[1] |= 1U << (FATTR4_OWNER - 32);
		xputowner(o, s->uid);
	}
	if (s->what & SA_GID) {
		o->mask[1] |= 1U << (FATTR4_OWNER_GROUP - 32);
		xputowner(o, s->gid);
	}
	if (s->what & SA_ATIME) {
		o->mask[1] |= 1U << (FATTR4_TIME_ACCESS_SET - 32);
		xputsettime(o, &s->atime);
	}
	if (s->what & SA_MTIME) {
		o->mask[1] |= 1U << (FATTR4_TIME_MODIFY_SET - 32);
		xputsettime(o, &s->mtime);
	}
}

static void fattr_from(fattr4 *fa, struct fattr_out *o)
{
	fa->attrmask.bitmap4_len = 2;
	fa->attrmask.bitmap4_val = o->mask;
	fa->attr_vals.attrlist4_len = (u_int)o->len;
	fa->attr_vals.attrlist4_val = (char *)o->buf;
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

static int nfs4_errno(int st)
{
	switch (st) {
	case NFS4_OK: return 0;
	case NFS4ERR_PERM: return -EPERM;
	case NFS4ERR_NOENT: return -ENOENT;
	case NFS4ERR_IO: return -EIO;
	case NFS4ERR_NXIO: return -ENXIO;
	case NFS4ERR_ACCESS: return -EACCES;
	case NFS4ERR_EXIST: return -EEXIST;
	case NFS4ERR_XDEV: return -EXDEV;
	case NFS4ERR_NOTDIR: return -ENOTDIR;
	case NFS4ERR_ISDIR: return -EISDIR;
	case NFS4ERR_INVAL: return -EINVAL;
	case NFS4ERR_FBIG: return -EFBIG;
	case NFS4ERR_NOSPC: return -ENOSPC;
	case NFS4ERR_ROFS: return -EROFS;
	case NFS4ERR_MLINK: return -EMLINK;
	case NFS4ERR_NAMETOOLONG: return -ENAMETOOLONG;
	case NFS4ERR_NOTEMPTY: return -ENOTEMPTY;
	case NFS4ERR_DQUOT: return -EDQUOT;
	case NFS4ERR_STALE: return -ESTALE;
	case NFS4ERR_BADHANDLE: return -ESTALE;
	case NFS4ERR_FHEXPIRED: return -ESTALE;
	case NFS4ERR_NOTSUPP: return -EOPNOTSUPP;
	case NFS4ERR_ATTRNOTSUPP: return -EOPNOTSUPP;
	case NFS4ERR_TOOSMALL: return -EINVAL;
	case NFS4ERR_BADTYPE: return -EINVAL;
	case NFS4ERR_BADOWNER: return -EINVAL;
	case NFS4ERR_BADCHAR: return -EINVAL;
	case NFS4ERR_BADNAME: return -EINVAL;
	case NFS4ERR_SYMLINK: return -ELOOP;
	case NFS4ERR_FILE_OPEN: return -EBUSY;
	case NFS4ERR_LOCKED: return -EAGAIN;
	case NFS4ERR_DENIED: return -EAGAIN;
	case NFS4ERR_SHARE_DENIED: return -EACCES;
	case NFS4ERR_OPENMODE: return -EACCES;
	case NFS4ERR_WRONGSEC: return -EPERM;
	case NFS4ERR_DELAY: return -EAGAIN;
	case NFS4ERR_GRACE: return -EAGAIN;
	default: return -EIO;
	}
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */

struct fh {
	uint32_t len;
	char val[NFS4_FHSIZE];
};

struct conn {
	int idx;
	struct nfs_context *nfs;
	struct rpc_context *rpc;
	char hostname[64];
	struct creds auth;
	int have_auth;
	/* NFSv4.0 client and open-owner, used only to create regular files */
	uint64_t clientid;
	int have_clientid;
	char client_name[128];
	char owner[64];
	uint32_t owner_gen;
	uint32_t seqid;
	verifier4 verifier;
	int broken;        /* transport failed: rebuilt before the next use */
	unsigned sessions; /* connections made so far */
};

static struct conn conns[MAX_CONNS];
static int nconns;
static unsigned busy_mask;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static struct fh root_fh;
static uint32_t max_read = 1 << 20, max_write = 1 << 20;

static struct conn *conn_get(void)
{
	struct conn *c = NULL;

	pthread_mutex_lock(&pool_lock);
	for (;;) {
		for (int i = 0; i < nconns; i++) {
			if (!(busy_mask & (1U << i))) {
				busy_mask |= 1U << i;
				c = &conns[i];
				break;
			}
		}
		if (c)
			break;
		pthread_cond_wait(&pool_cond, &pool_lock);
	}
	pthread_mutex_unlock(&pool_lock);
	return c;
}

static void conn_put(struct conn *c)
{
	pthread_mutex_lock(&pool_lock);
	busy_mask &= ~(1U << c->idx);
	pthread_cond_signal(&pool_cond);
	pthread_mutex_unlock(&pool_lock);
}

static int conn_set_auth(struct conn *c, const struct creds *cr)
{
	struct AUTH *auth;

	if (c->have_auth && creds_equal(&c->auth, cr))
		return 0;
	auth = libnfs_authunix_create(c->hostname, cr->uid, cr->gid,
				      cr->ngroups, (uint32_t *)cr->groups);
	if (auth == NULL)
		return -ENOMEM;
	rpc_set_auth(c->rpc, auth); /* frees the previous one */
	c->auth = *cr;
	c->have_auth = 1;
	return 0;
}

/* Everything a COMPOUND reply can hand back to the caller. */
typedef void (*dirent_fn)(void *arg, const char *name, size_t namelen,
			  const fattr4 *attrs);

struct reply {
	int rpc_err;     /* transport failure: -errno */
	int status;      /* COMPOUND status */
	int failed_op;   /* operation code that failed, or 0 */
	int have_attr;
	struct nattr attr;
	int have_fh;
	struct fh fh;
	uint32_t access_supported, access;
	/* READ */
	char *rbuf;
	size_t rcap, nread;
	int eof;
	/* WRITE */
	uint32_t written;
	int committed;
	/* OPEN / OPEN_CONFIRM */
	stateid4 stateid;
	uint32_t rflags;
	int deleg_type;
	stateid4 deleg_stateid;
	uint64_t attrset;
	/* READLINK */
	char *link;
	size_t linkcap;
	/* READDIR */
	dirent_fn dir_cb;
	void *dir_arg;
	uint64_t last_cookie;
	char cookieverf[NFS4_VERIFIER_SIZE];
	int dir_eof;
	/* SETCLIENTID */
	uint64_t clientid;
	char confirm[NFS4_VERIFIER_SIZE];
	int done;
};

static void collect(struct reply *r, COMPOUND4res *res)
{
	r->status = res->status;
	for (u_int i = 0; i < res->resarray.resarray_len; i++) {
		nfs_resop4 *op = &res->resarray.resarray_val[i];
		/* every result starts with its nfsstat4 */
		int st = *(nfsstat4 *)&op->nfs_resop4_u;

		if (st != NFS4_OK) {
			r->failed_op = (int)op->resop;
			break;
		}
		switch (op->resop) {
		case OP_GETATTR:
			if (parse_fattr(&op->nfs_resop4_u.opgetattr.GETATTR4res_u
					       .resok4.obj_attributes,
					&r->attr) == 0)
				r->have_attr = 1;
			break;
		case OP_GETFH: {
			nfs_fh4 *f = &op->nfs_resop4_u.opgetfh.GETFH4res_u
					      .resok4.object;
			if (f->nfs_fh4_len <= NFS4_FHSIZE) {
				r->fh.len = f->nfs_fh4_len;
				memcpy(r->fh.val, f->nfs_fh4_val, f->nfs_fh4_len);
				r->have_fh = 1;
			}
			break;
		}
		case OP_ACCESS:
			r->access_supported = op->nfs_resop4_u.opaccess
						      .ACCESS4res_u.resok4.supported;
			r->access = op->nfs_resop4_u.opaccess.ACCESS4res_u
					    .resok4.access;
			break;
		case OP_READ: {
			READ4resok *rd = &op->nfs_resop4_u.opread.READ4res_u.resok4;
			size_t n = rd->data.data_len;

			if (n > r->rcap)
				n = r->rcap;
			memcpy(r->rbuf, rd->data.data_val, n);
			r->nread = n;
			r->eof = rd->eof;
			break;
		}
		case OP_WRITE:
			r->written = op->nfs_resop4_u.opwrite.WRITE4res_u.resok4
					     .count;
			r->committed = op->nfs_resop4_u.opwrite.WRITE4res_u
					       .resok4.committed;
			break;
		case OP_OPEN: {
			OPEN4resok *o = &op->nfs_resop4_u.opopen.OPEN4res_u.resok4;

			r->stateid = o->stateid;
			r->rflags = o->rflags;
			r->attrset = 0;
			for (u_int w = 0; w < o->attrset.bitmap4_len && w < 2; w++)
				r->attrset |= (uint64_t)o->attrset.bitmap4_val[w]
					      << (32 * w);
			r->deleg_type = o->delegation.delegation_type;
			if (r->deleg_type == OPEN_DELEGATE_READ)
				r->deleg_stateid =
					o->delegation.open_delegation4_u.read
						.stateid;
			else if (r->deleg_type == OPEN_DELEGATE_WRITE)
				r->deleg_stateid =
					o->delegation.open_delegation4_u.write
						.stateid;
			break;
		}
		case OP_OPEN_CONFIRM:
			r->stateid = op->nfs_resop4_u.opopen_confirm
					     .OPEN_CONFIRM4res_u.resok4.open_stateid;
			break;
		case OP_READLINK: {
			linktext4 *l = &op->nfs_resop4_u.opreadlink.READLINK4res_u
						.resok4.link;
			size_t n = l->utf8string_len;

			if (r->linkcap == 0)
				break;
			if (n > r->linkcap - 1)
				n = r->linkcap - 1;
			memcpy(r->link, l->utf8string_val, n);
			r->link[n] = '\0';
			break;
		}
		case OP_READDIR: {
			READDIR4resok *rd =
				&op->nfs_resop4_u.opreaddir.READDIR4res_u.resok4;

			memcpy(r->cookieverf, rd->cookieverf, NFS4_VERIFIER_SIZE);
			for (entry4 *e = rd->reply.entries; e; e = e->nextentry) {
				r->last_cookie = e->cookie;
				if (r->dir_cb)
					r->dir_cb(r->dir_arg, e->name.utf8string_val,
						  e->name.utf8string_len,
						  &e->attrs);
			}
			r->dir_eof = rd->reply.eof;
			break;
		}
		case OP_SETCLIENTID: {
			SETCLIENTID4resok *s = &op->nfs_resop4_u.opsetclientid
							.SETCLIENTID4res_u.resok4;
			r->clientid = s->clientid;
			memcpy(r->confirm, s->setclientid_confirm,
			       NFS4_VERIFIER_SIZE);
			break;
		}
		default:
			break;
		}
	}
}

static void compound_cb(struct rpc_context *rpc, int status, void *data,
			void *private_data)
{
	struct reply *r = private_data;

	(void)rpc;
	r->done = 1;
	if (status == RPC_STATUS_SUCCESS) {
		collect(r, data);
	} else {
		r->rpc_err = status == RPC_STATUS_TIMEOUT ? -ETIMEDOUT : -EIO;
		if (status == RPC_STATUS_ERROR && data)
			logmsg(LOG_WARNING, "RPC to %s failed: %s", cfg.server,
			       (const char *)data);
	}
}

/* Queues one COMPOUND; the reply lands in *r.  Returns -errno. */
static int queue_compound(struct conn *c, nfs_argop4 *ops, int nops,
			  struct reply *r)
{
	COMPOUND4args args;

	memset(&args, 0, sizeof(args));
	args.argarray.argarray_len = (u_int)nops;
	args.argarray.argarray_val = ops;
	r->done = 0;
	r->rpc_err = 0;
	r->status = NFS4_OK;
	r->failed_op = 0;
	/* the arguments are encoded here: ops may be reused on return */
	if (rpc_nfs4_compound_async(c->rpc, compound_cb, &args, r) != 0) {
		logmsg(LOG_WARNING, "cannot queue RPC to %s: %s", cfg.server,
		       rpc_get_error(c->rpc));
		c->broken = 1;
		return -EIO;
	}
	return 0;
}

/* Serves the connection until every one of the n replies has arrived. */
static int wait_replies(struct conn *c, struct reply *rs, int n)
{
	for (;;) {
		struct pollfd pfd;
		int pending = 0, k;

		for (int i = 0; i < n; i++)
			pending += !rs[i].done;
		if (!pending)
			return 0;
		pfd.fd = rpc_get_fd(c->rpc);
		pfd.events = (short)rpc_which_events(c->rpc);
		pfd.revents = 0;
		k = poll(&pfd, 1, 100);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (rpc_service(c->rpc, k > 0 ? pfd.revents : 0) < 0) {
			logmsg(LOG_WARNING, "connection to %s failed: %s",
			       cfg.server, rpc_get_error(c->rpc));
			c->broken = 1;
			for (int i = 0; i < n; i++) {
				if (!rs[i].done) {
					rs[i].done = 1;
					rs[i].rpc_err = -EIO;
				}
			}
			return -EIO;
		}
	}
}

static int reply_errno(const struct reply *r)
{
	return r->rpc_err ? r->rpc_err : nfs4_errno(r->status);
}

/* Sends one COMPOUND and waits for its reply.  Returns -errno. */
static int run_once(struct conn *c, nfs_argop4 *ops, int nops, struct reply *r)
{
	int err = queue_compound(c, ops, nops, r);

	if (err)
		return err;
	err = wait_replies(c, r, 1);
	if (err && !r->rpc_err)
		return err;
	return reply_errno(r);
}

static int conn_connect(struct conn *c, char *why, size_t whylen);

static int conn_reconnect(struct conn *c)
{
	char why[512];

	if (conn_connect(c, why, sizeof(why)) != 0) {
		logmsg(LOG_WARNING, "reconnecting to %s: %s", cfg.server, why);
		return -EIO;
	}
	logmsg(LOG_NOTICE, "reconnected to %s", cfg.server);
	return 0;
}

/* As run_once, with retries while the server says DELAY or GRACE. */
static int run(struct conn *c, const struct creds *cr, nfs_argop4 *ops,
	       int nops, struct reply *r)
{
	time_t deadline = time(NULL) + RETRY_DEADLINE_S;
	useconds_t pause_us = 10000;
	int err;

	for (;;) {
		int again;

		err = c->broken ? conn_reconnect(c) : 0;
		if (!err)
			err = conn_set_auth(c, cr);
		if (!err)
			err = run_once(c, ops, nops, r);
		if (err == 0)
			return 0;
		/* server busy or in grace, or the connection is gone: again */
		again = c->broken || (!r->rpc_err && (r->status == NFS4ERR_DELAY ||
						      r->status == NFS4ERR_GRACE));
		if (!again || time(NULL) >= deadline)
			return err;
		usleep(pause_us);
		if (pause_us < 1000000)
			pause_us *= 2;
	}
}

/* ------------------------------------------------------------------ */
/* COMPOUND building                                                   */

struct cbuild {
	nfs_argop4 ops[MAX_OPS];
	int n;
	uint32_t bitmap[2][2]; /* storage for GETATTR bitmaps */
	int nbitmaps;
	char *pathcopy[2];
	struct fh prefix[2]; /* pre-resolved fh of very deep paths */
};

static void cb_init(struct cbuild *b)
{
	memset(b, 0, sizeof(*b));
}

static void cb_free(struct cbuild *b)
{
	free(b->pathcopy[0]);
	free(b->pathcopy[1]);
}

static nfs_argop4 *cb_op(struct cbuild *b, nfs_opnum4 code)
{
	nfs_argop4 *op;

	if (b->n >= MAX_OPS)
		abort(); /* callers bound their own sizes */
	op = &b->ops[b->n++];
	memset(op, 0, sizeof(*op));
	op->argop = code;
	return op;
}

static void cb_putfh(struct cbuild *b, const struct fh *fh)
{
	nfs_argop4 *op = cb_op(b, OP_PUTFH);

	op->nfs_argop4_u.opputfh.object.nfs_fh4_len = fh->len;
	op->nfs_argop4_u.opputfh.object.nfs_fh4_val = (char *)fh->val;
}

static void cb_getattr(struct cbuild *b, uint64_t attrs)
{
	nfs_argop4 *op = cb_op(b, OP_GETATTR);
	uint32_t *bm = b->bitmap[b->nbitmaps++];

	bm[0] = (uint32_t)attrs;
	bm[1] = (uint32_t)(attrs >> 32);
	op->nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 2;
	op->nfs_argop4_u.opgetattr.attr_request.bitmap4_val = bm;
}

static void cb_simple(struct cbuild *b, nfs_opnum4 code)
{
	cb_op(b, code);
}

static void set_component(component4 *c, const char *name)
{
	c->utf8string_len = (u_int)strlen(name);
	c->utf8string_val = (char *)name;
}

static int resolve_prefix(struct conn *c, const struct creds *cr,
			  char **comps, int ncomps, struct fh *out);

/*
 * Appends PUTFH(export root) + LOOKUP for each component of path.  With
 * want_parent, the last component is not looked up and *last points at it.
 * slot selects which of the two path buffers is used (LINK, RENAME).
 */
static int cb_path(struct cbuild *b, struct conn *c, const struct creds *cr,
		   int slot, const char *path, int want_parent,
		   const char **last)
{
	char *copy, *save = NULL, *tok;
	char *comps[PATH_MAX / 2];
	int n = 0, start = 0, err;

	copy = strdup(path);
	if (copy == NULL)
		return -ENOMEM;
	b->pathcopy[slot] = copy;
	for (tok = strtok_r(copy, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save))
		comps[n++] = tok;
	if (want_parent) {
		if (n == 0)
			return -EINVAL; /* the export root has no parent here */
		*last = comps[--n];
	}
	{
		/* the tail that fits one COMPOUND; the rest is resolved first */
		size_t bytes = 0;

		start = n;
		while (start > 0 && n - start < MAX_LOOKUPS / 2) {
			size_t len = 8 + strlen(comps[start - 1]);

			if (bytes + len > LOOKUP_BYTES)
				break;
			bytes += len;
			start--;
		}
		if (want_parent && strlen(*last) + 8 + bytes > LOOKUP_BYTES &&
		    start < n)
			start++;
	}
	if (start > 0) {
		err = resolve_prefix(c, cr, comps, start, &b->prefix[slot]);
		if (err)
			return err;
		cb_putfh(b, &b->prefix[slot]);
	} else {
		cb_putfh(b, &root_fh);
	}
	for (int i = start; i < n; i++) {
		nfs_argop4 *op = cb_op(b, OP_LOOKUP);

		set_component(&op->nfs_argop4_u.oplookup.objname, comps[i]);
	}
	return 0;
}

static int resolve_prefix(struct conn *c, const struct creds *cr,
			  char **comps, int ncomps, struct fh *out)
{
	struct fh cur = root_fh;
	int i = 0;

	while (i < ncomps) {
		struct cbuild b;
		struct reply r;
		int err;

		cb_init(&b);
		memset(&r, 0, sizeof(r));
		cb_putfh(&b, &cur);
		for (size_t k = 0, bytes = 0; i < ncomps && k < MAX_LOOKUPS &&
		     (k == 0 || bytes + 8 + strlen(comps[i]) <= LOOKUP_BYTES);
		     k++, i++) {
			nfs_argop4 *op = cb_op(&b, OP_LOOKUP);

			bytes += 8 + strlen(comps[i]);

			set_component(&op->nfs_argop4_u.oplookup.objname,
				      comps[i]);
		}
		cb_simple(&b, OP_GETFH);
		err = run(c, cr, b.ops, b.n, &r);
		if (err)
			return err;
		if (!r.have_fh)
			return -EIO;
		cur = r.fh;
	}
	*out = cur;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Close-to-open: attributes last handed to the kernel, by file id     */

#define CTO_SLOTS 4096
static struct {
	uint64_t fileid;
	uint64_t change;
	uint64_t size;
} cto[CTO_SLOTS];
static pthread_mutex_t cto_lock = PTHREAD_MUTEX_INITIALIZER;

static void cto_note(const struct nattr *a)
{
	unsigned s = (unsigned)(a->fileid % CTO_SLOTS);

	pthread_mutex_lock(&cto_lock);
	cto[s].fileid = a->fileid;
	cto[s].change = a->change;
	cto[s].size = a->size;
	pthread_mutex_unlock(&cto_lock);
}

/* True when the kernel may still hold attributes older than these. */
static int cto_changed(const struct nattr *a)
{
	unsigned s = (unsigned)(a->fileid % CTO_SLOTS);
	int changed;

	pthread_mutex_lock(&cto_lock);
	changed = cto[s].fileid != a->fileid || cto[s].change != a->change ||
		  cto[s].size != a->size;
	cto[s].fileid = a->fileid;
	cto[s].change = a->change;
	cto[s].size = a->size;
	pthread_mutex_unlock(&cto_lock);
	return changed;
}

/* ------------------------------------------------------------------ */
/* Open files                                                          */

struct ofile {
	struct fh fh;
	struct creds cr; /* the opener's: I/O goes out as the kernel client's */
	int flags;
	int dirty;       /* UNSTABLE data not yet committed */
	int fix_mode;    /* created without owner write: final mode at close */
	uint32_t final_mode;
	pthread_mutex_t lock;
};

static struct ofile *ofile_of(struct fuse_file_info *fi)
{
	return fi ? (struct ofile *)(uintptr_t)fi->fh : NULL;
}

static const stateid4 anon_stateid; /* all zeros: the anonymous stateid */

/* ------------------------------------------------------------------ */
/* Helpers shared by the operations                                    */

/* GETATTR (+ optional GETFH) of path, or of fi's handle. */
static int do_getattr(const char *path, struct fuse_file_info *fi,
		      const struct creds *cr, struct nattr *a, struct fh *fh)
{
	struct conn *c = conn_get();
	struct ofile *of = ofile_of(fi);
	struct cbuild b;
	struct reply r;
	int err;

	cb_init(&b);
	memset(&r, 0, sizeof(r));
	if (of) {
		cb_putfh(&b, &of->fh);
	} else {
		err = cb_path(&b, c, cr, 0, path, 0, NULL);
		if (err)
			goto out;
	}
	if (fh)
		cb_simple(&b, OP_GETFH);
	cb_getattr(&b, STD_ATTRS);
	err = run(c, cr, b.ops, b.n, &r);
	if (!err && (!r.have_attr || (fh && !r.have_fh)))
		err = -EIO;
	if (!err) {
		*a = r.attr;
		if (fh)
			*fh = r.fh;
	}
out:
	cb_free(&b);
	conn_put(c);
	return err;
}

static int do_setattr(const char *path, struct fuse_file_info *fi,
		      const struct setattrs *s)
{
	struct creds cr;
	struct conn *c;
	struct ofile *of = ofile_of(fi);
	struct cbuild b;
	struct reply r;
	struct fattr_out fo;
	nfs_argop4 *op;
	int err;

	caller_creds(&cr);
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	if (of) {
		cb_putfh(&b, &of->fh);
	} else {
		err = cb_path(&b, c, &cr, 0, path, 0, NULL);
		if (err)
			goto out;
	}
	encode_setattrs(s, &fo);
	op = cb_op(&b, OP_SETATTR);
	op->nfs_argop4_u.opsetattr.stateid = anon_stateid;
	fattr_from(&op->nfs_argop4_u.opsetattr.obj_attributes, &fo);
	err = run(c, &cr, b.ops, b.n, &r);
out:
	cb_free(&b);
	conn_put(c);
	return err;
}

/* ------------------------------------------------------------------ */
/* FUSE operations                                                     */

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *fc)
{
	/* O_TRUNC arrives as a separate truncate, checked by the server. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->max_write > max_write)
		conn->max_write = max_write;
	fc->use_ino = 1;
	fc->entry_timeout = cfg.entry_timeout;
	fc->attr_timeout = cfg.attr_timeout;
	fc->negative_timeout = 0; /* files made by other clients show at once */
	fc->kernel_cache = 0;     /* page cache dropped at each open */
	fc->auto_cache = 0;
	fc->hard_remove = 0; /* unlinked-while-open files are renamed away */
	return NULL;
}

static int op_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct creds cr;
	struct nattr a;
	int err;

	caller_creds(&cr);
	err = do_getattr(path, fi, &cr, &a, NULL);
	if (err)
		return err;
	nattr_to_stat(&a, st);
	cto_note(&a);
	return 0;
}

static int op_access(const char *path, int mask)
{
	struct creds cr;
	struct conn *c;
	struct cbuild b;
	struct reply r;
	nfs_argop4 *op;
	uint32_t need = 0;
	int err;

	caller_creds(&cr);
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	err = cb_path(&b, c, &cr, 0, path, 0, NULL);
	if (err)
		goto out;
	op = cb_op(&b, OP_ACCESS);
	op->nfs_argop4_u.opaccess.access = ACCESS4_READ | ACCESS4_LOOKUP |
					   ACCESS4_MODIFY | ACCESS4_EXTEND |
					   ACCESS4_EXECUTE;
	cb_getattr(&b, BIT(FATTR4_TYPE));
	err = run(c, &cr, b.ops, b.n, &r);
	if (err || mask == F_OK)
		goto out;
	if (mask & R_OK)
		need |= ACCESS4_READ;
	if (mask & W_OK)
		need |= ACCESS4_MODIFY;
	if (mask & X_OK)
		need |= r.attr.type == NF4DIR ? ACCESS4_LOOKUP : ACCESS4_EXECUTE;
	if ((r.access & need) != need)
		err = -EACCES;
out:
	cb_free(&b);
	conn_put(c);
	return err;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	struct creds cr;
	struct conn *c;
	struct cbuild b;
	struct reply r;
	int err;

	caller_creds(&cr);
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	r.link = buf;
	r.linkcap = size;
	err = cb_path(&b, c, &cr, 0, path, 0, NULL);
	if (!err) {
		cb_simple(&b, OP_READLINK);
		err = run(c, &cr, b.ops, b.n, &r);
	}
	cb_free(&b);
	conn_put(c);
	return err;
}

/* CREATE for everything but regular files. */
static int do_create_obj(const char *path, nfs_ftype4 type, mode_t mode,
			 const char *linkdata, dev_t rdev)
{
	struct creds cr;
	struct conn *c;
	struct cbuild b;
	struct reply r;
	struct fattr_out fo;
	struct setattrs s = { .what = SA_MODE, .mode = mode & 07777 };
	const char *name;
	nfs_argop4 *op;
	int err;

	caller_creds(&cr);
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	err = cb_path(&b, c, &cr, 0, path, 1, &name);
	if (err)
		goto out;
	if (type == NF4LNK)
		s.what = 0;
	encode_setattrs(&s, &fo);
	op = cb_op(&b, OP_CREATE);
	op->nfs_argop4_u.opcreate.objtype.type = type;
	if (type == NF4LNK)
		set_component(&op->nfs_argop4_u.opcreate.objtype.createtype4_u
					.linkdata,
			      linkdata);
	if (type == NF4BLK || type == NF4CHR) {
		op->nfs_argop4_u.opcreate.objtype.createtype4_u.devdata
			.specdata1 = major(rdev);
		op->nfs_argop4_u.opcreate.objtype.createtype4_u.devdata
			.specdata2 = minor(rdev);
	}
	set_component(&op->nfs_argop4_u.opcreate.objname, name);
	fattr_from(&op->nfs_argop4_u.opcreate.createattrs, &fo);
	err = run(c, &cr, b.ops, b.n, &r);
out:
	cb_free(&b);
	conn_put(c);
	return err;
}

static int op_mkdir(const char *path, mode_t mode)
{
	return do_create_obj(path, NF4DIR, mode, NULL, 0);
}

static int op_symlink(const char *target, const char *linkpath)
{
	/* the whole COMPOUND must fit libnfs 4.0's 4 KiB encoding buffer */
	if (strlen(target) > 2048)
		return -ENAMETOOLONG;
	return do_create_obj(linkpath, NF4LNK, 0777, target, 0);
}

static int do_remove(const char *path)
{
	struct creds cr;
	struct conn *c;
	struct cbuild b;
	struct reply r;
	const char *name;
	nfs_argop4 *op;
	int err;

	caller_creds(&cr);
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	err = cb_path(&b, c, &cr, 0, path, 1, &name);
	if (!err) {
		op = cb_op(&b, OP_REMOVE);
		set_component(&op->nfs_argop4_u.opremove.target, name);
		err = run(c, &cr, b.ops, b.n, &r);
	}
	cb_free(&b);
	conn_put(c);
	return err;
}

static int op_unlink(const char *path)
{
	return do_remove(path);
}

static int op_rmdir(const char *path)
{
	return do_remove(path);
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	struct creds cr;
	struct conn *c;
	struct cbuild b;
	struct reply r;
	const char *oldname, *newname;
	nfs_argop4 *op;
	int err;

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE / WHITEOUT: not in NFSv4 */
	caller_creds(&cr);
	if (flags & RENAME_NOREPLACE) {
		struct nattr a;

		/* not atomic: NFSv4.0 RENAME always replaces */
		err = do_getattr(to, NULL, &cr, &a, NULL);
		if (err == 0)
			return -EEXIST;
		if (err != -ENOENT)
			return err;
	}
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	err = cb_path(&b, c, &cr, 0, from, 1, &oldname);
	if (err)
		goto out;
	cb_simple(&b, OP_SAVEFH);
	err = cb_path(&b, c, &cr, 1, to, 1, &newname);
	if (err)
		goto out;
	op = cb_op(&b, OP_RENAME);
	set_component(&op->nfs_argop4_u.oprename.oldname, oldname);
	set_component(&op->nfs_argop4_u.oprename.newname, newname);
	err = run(c, &cr, b.ops, b.n, &r);
out:
	cb_free(&b);
	conn_put(c);
	return err;
}

static int op_link(const char *from, const char *to)
{
	struct creds cr;
	struct conn *c;
	struct cbuild b;
	struct reply r;
	const char *newname;
	nfs_argop4 *op;
	int err;

	caller_creds(&cr);
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	err = cb_path(&b, c, &cr, 0, from, 0, NULL);
	if (err)
		goto out;
	cb_simple(&b, OP_SAVEFH);
	err = cb_path(&b, c, &cr, 1, to, 1, &newname);
	if (err)
		goto out;
	op = cb_op(&b, OP_LINK);
	set_component(&op->nfs_argop4_u.oplink.newname, newname);
	err = run(c, &cr, b.ops, b.n, &r);
out:
	cb_free(&b);
	conn_put(c);
	return err;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct setattrs s = { .what = SA_MODE, .mode = mode };

	return do_setattr(path, fi, &s);
}

static int op_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	struct setattrs s = { 0 };

	if (uid != (uid_t)-1) {
		s.what |= SA_UID;
		s.uid = uid;
	}
	if (gid != (gid_t)-1) {
		s.what |= SA_GID;
		s.gid = gid;
	}
	if (!s.what)
		return 0;
	return do_setattr(path, fi, &s);
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct setattrs s = { .what = SA_SIZE, .size = (uint64_t)size };

	if (size < 0)
		return -EINVAL;
	return do_setattr(path, fi, &s);
}

static int op_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct setattrs s = { 0 };
	struct timespec now[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };

	if (tv == NULL)
		tv = now;
	if (tv[0].tv_nsec != UTIME_OMIT) {
		s.what |= SA_ATIME;
		s.atime = tv[0];
	}
	if (tv[1].tv_nsec != UTIME_OMIT) {
		s.what |= SA_MTIME;
		s.mtime = tv[1];
	}
	if (!s.what)
		return 0;
	return do_setattr(path, fi, &s);
}

static struct ofile *ofile_new(const struct fh *fh, const struct creds *cr,
			       int flags)
{
	struct ofile *of = calloc(1, sizeof(*of));

	if (of == NULL)
		return NULL;
	of->fh = *fh;
	of->cr = *cr;
	of->flags = flags;
	pthread_mutex_init(&of->lock, NULL);
	return of;
}

static void ofile_attach(struct fuse_file_info *fi, struct ofile *of,
			 const char *path, int changed)
{
	fi->fh = (uint64_t)(uintptr_t)of;
	fi->keep_cache = 0;
	fi->direct_io = (of->flags & O_DIRECT) ? 1 : 0;
	/*
	 * Close-to-open: when the file changed since the kernel last saw its
	 * attributes, drop them (and the cached pages) now, as an NFS client
	 * revalidates at open.
	 */
	if (changed)
		fuse_invalidate_path(fuse_get_context()->fuse, path);
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct creds cr;
	struct conn *c;
	struct cbuild b;
	struct reply r;
	struct ofile *of;
	nfs_argop4 *op;
	uint32_t need = 0;
	int acc = fi->flags & O_ACCMODE;
	int err;

	caller_creds(&cr);
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	err = cb_path(&b, c, &cr, 0, path, 0, NULL);
	if (err)
		goto out;
	cb_simple(&b, OP_GETFH);
	op = cb_op(&b, OP_ACCESS);
	op->nfs_argop4_u.opaccess.access = ACCESS4_READ | ACCESS4_MODIFY |
					   ACCESS4_EXTEND;
	cb_getattr(&b, STD_ATTRS);
	err = run(c, &cr, b.ops, b.n, &r);
	if (err)
		goto out;
	if (!r.have_fh || !r.have_attr) {
		err = -EIO;
		goto out;
	}
	if (r.attr.type == NF4DIR) {
		err = -EISDIR;
		goto out;
	}
	if (acc == O_RDONLY || acc == O_RDWR)
		need |= ACCESS4_READ;
	if (acc == O_WRONLY || acc == O_RDWR || (fi->flags & O_TRUNC))
		need |= ACCESS4_MODIFY;
	if ((r.access & need) != need) {
		err = -EACCES;
		goto out;
	}
	of = ofile_new(&r.fh, &cr, fi->flags);
	if (of == NULL) {
		err = -ENOMEM;
		goto out;
	}
	ofile_attach(fi, of, path, cto_changed(&r.attr));
out:
	cb_free(&b);
	conn_put(c);
	return err;
}

/* SETCLIENTID + SETCLIENTID_CONFIRM for this connection's OPENs. */
static int conn_setclientid(struct conn *c, const struct creds *cr)
{
	struct cbuild b;
	struct reply r;
	nfs_argop4 *op;
	int err;

	cb_init(&b);
	memset(&r, 0, sizeof(r));
	op = cb_op(&b, OP_SETCLIENTID);
	memcpy(op->nfs_argop4_u.opsetclientid.client.verifier, c->verifier,
	       NFS4_VERIFIER_SIZE);
	op->nfs_argop4_u.opsetclientid.client.id.id_len =
		(u_int)strlen(c->client_name);
	op->nfs_argop4_u.opsetclientid.client.id.id_val = c->client_name;
	op->nfs_argop4_u.opsetclientid.callback.cb_program = 0;
	op->nfs_argop4_u.opsetclientid.callback.cb_location.r_netid = "tcp";
	op->nfs_argop4_u.opsetclientid.callback.cb_location.r_addr =
		"0.0.0.0.0.0";
	err = run(c, cr, b.ops, b.n, &r);
	if (err)
		return err;
	cb_init(&b);
	op = cb_op(&b, OP_SETCLIENTID_CONFIRM);
	op->nfs_argop4_u.opsetclientid_confirm.clientid = r.clientid;
	memcpy(op->nfs_argop4_u.opsetclientid_confirm.setclientid_confirm,
	       r.confirm, NFS4_VERIFIER_SIZE);
	err = run(c, cr, b.ops, b.n, &r);
	if (err)
		return err;
	c->clientid = r.clientid;
	c->have_clientid = 1;
	/* a new client has no open-owners yet */
	c->owner_gen++;
	snprintf(c->owner, sizeof(c->owner), "owner-%d-%u", c->idx,
		 c->owner_gen);
	c->seqid = 0;
	return 0;
}

/* Did this status consume the open-owner's sequence id? (RFC 7530 9.1.7) */
static int seqid_consumed(int status)
{
	switch (status) {
	case NFS4ERR_STALE_CLIENTID:
	case NFS4ERR_STALE_STATEID:
	case NFS4ERR_BAD_STATEID:
	case NFS4ERR_BAD_SEQID:
	case NFS4ERR_BADZDR:
	case NFS4ERR_RESOURCE:
	case NFS4ERR_NOFILEHANDLE:
	case NFS4ERR_MOVED:
		return 0;
	default:
		return 1;
	}
}

/*
 * Creates (or, without O_EXCL, opens) a regular file with OPEN, then
 * closes the open state at once.  Returns the file handle and attributes.
 */
static int do_create_file(struct conn *c, const struct creds *cr,
			  const char *path, mode_t mode, int flags,
			  struct fh *fh, struct nattr *attr, int *created)
{
	int attempt, err = 0;

	for (attempt = 0; attempt < 3; attempt++) {
		struct cbuild b;
		struct reply r;
		struct fattr_out fo;
		struct setattrs s = { .what = SA_MODE, .mode = mode & 07777 };
		const char *name;
		nfs_argop4 *op;
		OPEN4args *oa;
		int acc = flags & O_ACCMODE;

		if (!c->have_clientid) {
			err = conn_setclientid(c, cr);
			if (err)
				return err;
		}
		cb_init(&b);
		memset(&r, 0, sizeof(r));
		err = cb_path(&b, c, cr, 0, path, 1, &name);
		if (err) {
			cb_free(&b);
			return err;
		}
		encode_setattrs(&s, &fo);
		op = cb_op(&b, OP_OPEN);
		oa = &op->nfs_argop4_u.opopen;
		oa->seqid = c->seqid;
		oa->share_access = acc == O_WRONLY ? OPEN4_SHARE_ACCESS_WRITE
			: acc == O_RDWR		   ? OPEN4_SHARE_ACCESS_BOTH
						   : OPEN4_SHARE_ACCESS_READ;
		oa->share_deny = OPEN4_SHARE_DENY_NONE;
		oa->owner.clientid = c->clientid;
		oa->owner.owner.owner_len = (u_int)strlen(c->owner);
		oa->owner.owner.owner_val = c->owner;
		oa->openhow.opentype = OPEN4_CREATE;
		oa->openhow.openflag4_u.how.mode =
			(flags & O_EXCL) ? GUARDED4 : UNCHECKED4;
		fattr_from(&oa->openhow.openflag4_u.how.createhow4_u.createattrs,
			   &fo);
		oa->claim.claim = CLAIM_NULL;
		set_component(&oa->claim.open_claim4_u.file, name);
		cb_simple(&b, OP_GETFH);
		cb_getattr(&b, STD_ATTRS);
		err = run(c, cr, b.ops, b.n, &r);
		cb_free(&b);
		if (r.failed_op == OP_OPEN || (!err && !r.rpc_err)) {
			if (seqid_consumed(r.status))
				c->seqid++;
		}
		if (r.failed_op == OP_OPEN &&
		    (r.status == NFS4ERR_STALE_CLIENTID ||
		     r.status == NFS4ERR_EXPIRED ||
		     r.status == NFS4ERR_BAD_SEQID)) {
			/* lease lapsed while idle, or owner out of step */
			c->have_clientid = 0;
			continue;
		}
		if (err)
			return err;
		if (!r.have_fh || !r.have_attr)
			return -EIO;
		*fh = r.fh;
		*attr = r.attr;
		*created = (flags & O_EXCL) ||
			   (r.attrset & BIT(FATTR4_MODE)) != 0;

		/* confirm a new open-owner, then give the open state back */
		if (r.rflags & OPEN4_RESULT_CONFIRM) {
			struct reply rc;

			cb_init(&b);
			memset(&rc, 0, sizeof(rc));
			cb_putfh(&b, fh);
			op = cb_op(&b, OP_OPEN_CONFIRM);
			op->nfs_argop4_u.opopen_confirm.open_stateid = r.stateid;
			op->nfs_argop4_u.opopen_confirm.seqid = c->seqid;
			err = run(c, cr, b.ops, b.n, &rc);
			if (seqid_consumed(rc.status) && !rc.rpc_err)
				c->seqid++;
			if (err) {
				c->have_clientid = 0;
				return err;
			}
			r.stateid = rc.stateid;
		}
		{
			struct reply rc;

			cb_init(&b);
			memset(&rc, 0, sizeof(rc));
			cb_putfh(&b, fh);
			if (r.deleg_type != OPEN_DELEGATE_NONE) {
				op = cb_op(&b, OP_DELEGRETURN);
				op->nfs_argop4_u.opdelegreturn.deleg_stateid =
					r.deleg_stateid;
			}
			op = cb_op(&b, OP_CLOSE);
			op->nfs_argop4_u.opclose.seqid = c->seqid;
			op->nfs_argop4_u.opclose.open_stateid = r.stateid;
			err = run(c, cr, b.ops, b.n, &rc);
			if (seqid_consumed(rc.status) && !rc.rpc_err)
				c->seqid++;
			if (err) /* the file exists; the server drops the state */
				c->have_clientid = 0;
		}
		return 0;
	}
	return err ? err : -EIO;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct creds cr;
	struct conn *c;
	struct ofile *of;
	struct nattr a;
	struct fh fh;
	int created = 0, err;
	/*
	 * I/O goes out with the anonymous stateid, checked against the mode:
	 * a file created without owner write (tar extracting a 0444 file)
	 * gets it until its last close, as the kernel client's open state
	 * would allow.
	 */
	int writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	mode_t cmode = writable ? (mode | 0200) : mode;

	caller_creds(&cr);
	c = conn_get();
	err = do_create_file(c, &cr, path, cmode, fi->flags, &fh, &a, &created);
	conn_put(c);
	if (err)
		return err;
	if (a.type != NF4REG)
		return a.type == NF4DIR ? -EISDIR : -EEXIST;
	of = ofile_new(&fh, &cr, fi->flags);
	if (of == NULL)
		return -ENOMEM;
	if (created && cmode != mode) {
		of->fix_mode = 1;
		of->final_mode = mode & 07777;
	}
	ofile_attach(fi, of, path, cto_changed(&a));
	return 0;
}

static int op_mknod(const char *path, mode_t mode, dev_t rdev)
{
	switch (mode & S_IFMT) {
	case S_IFREG: {
		struct creds cr;
		struct conn *c;
		struct nattr a;
		struct fh fh;
		int created, err;

		caller_creds(&cr);
		c = conn_get();
		err = do_create_file(c, &cr, path, mode, O_RDONLY | O_EXCL,
				     &fh, &a, &created);
		conn_put(c);
		return err;
	}
	case S_IFIFO: return do_create_obj(path, NF4FIFO, mode, NULL, 0);
	case S_IFSOCK: return do_create_obj(path, NF4SOCK, mode, NULL, 0);
	case S_IFCHR: return do_create_obj(path, NF4CHR, mode, NULL, rdev);
	case S_IFBLK: return do_create_obj(path, NF4BLK, mode, NULL, rdev);
	default: return -EINVAL;
	}
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct ofile *of = ofile_of(fi);
	size_t done = 0;
	struct conn *c;
	int err = 0;

	(void)path;
	c = conn_get();
	while (done < size) {
		struct cbuild b;
		struct reply r;
		nfs_argop4 *op;
		uint32_t want = (uint32_t)(size - done < max_read ? size - done
								  : max_read);

		cb_init(&b);
		memset(&r, 0, sizeof(r));
		r.rbuf = buf + done;
		r.rcap = want;
		cb_putfh(&b, &of->fh);
		op = cb_op(&b, OP_READ);
		op->nfs_argop4_u.opread.stateid = anon_stateid;
		op->nfs_argop4_u.opread.offset = (uint64_t)off + done;
		op->nfs_argop4_u.opread.count = want;
		err = run(c, &of->cr, b.ops, b.n, &r);
		if (err)
			break;
		done += r.nread;
		if (r.eof || r.nread == 0)
			break;
	}
	conn_put(c);
	if (err && done == 0)
		return err;
	return (int)done;
}

/*
 * libnfs 4.0 encodes a COMPOUND into a 4 KiB buffer, so WRITE data goes in
 * chunks that fit it, many in flight at once on one connection.
 */
#define WRITE_CHUNK 3072
#define WRITE_WINDOW 64

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct ofile *of = ofile_of(fi);
	struct reply rs[WRITE_WINDOW];
	uint32_t lens[WRITE_WINDOW];
	size_t done = 0;
	struct conn *c;
	int err, dirty = 0;
	int stable = (of->flags & O_SYNC) == O_SYNC ? FILE_SYNC4
		     : (of->flags & O_DSYNC)	      ? DATA_SYNC4
						      : UNSTABLE4;

	(void)path;
	time_t deadline = time(NULL) + RETRY_DEADLINE_S;

	c = conn_get();
	err = c->broken ? conn_reconnect(c) : 0;
	while (!err && done < size) {
		size_t pos = done;
		int n = 0;

		err = conn_set_auth(c, &of->cr);
		if (err)
			break;

		for (; n < WRITE_WINDOW && pos < size; n++) {
			nfs_argop4 wops[2];
			uint32_t want = (uint32_t)(size - pos < WRITE_CHUNK
							   ? size - pos
							   : WRITE_CHUNK);

			memset(wops, 0, sizeof(wops));
			wops[0].argop = OP_PUTFH;
			wops[0].nfs_argop4_u.opputfh.object.nfs_fh4_len =
				of->fh.len;
			wops[0].nfs_argop4_u.opputfh.object.nfs_fh4_val =
				of->fh.val;
			wops[1].argop = OP_WRITE;
			wops[1].nfs_argop4_u.opwrite.stateid = anon_stateid;
			wops[1].nfs_argop4_u.opwrite.offset = (uint64_t)off + pos;
			wops[1].nfs_argop4_u.opwrite.stable = stable;
			wops[1].nfs_argop4_u.opwrite.data.data_len = want;
			wops[1].nfs_argop4_u.opwrite.data.data_val =
				(char *)buf + pos;
			memset(&rs[n], 0, sizeof(rs[n]));
			err = queue_compound(c, wops, 2, &rs[n]);
			if (err)
				break;
			lens[n] = want;
			pos += want;
		}
		if (n == 0 && !c->broken)
			break;
		if (n > 0)
			wait_replies(c, rs, n);
		/* data counts as written up to the first chunk that failed */
		for (int i = 0; i < n; i++) {
			int e = reply_errno(&rs[i]);

			if (e == -EAGAIN && !rs[i].rpc_err) {
				/* DELAY / GRACE: this chunk again, waiting */
				struct cbuild b;
				nfs_argop4 *op;

				cb_init(&b);
				cb_putfh(&b, &of->fh);
				op = cb_op(&b, OP_WRITE);
				op->nfs_argop4_u.opwrite.stateid = anon_stateid;
				op->nfs_argop4_u.opwrite.offset =
					(uint64_t)off + done;
				op->nfs_argop4_u.opwrite.stable = stable;
				op->nfs_argop4_u.opwrite.data.data_len = lens[i];
				op->nfs_argop4_u.opwrite.data.data_val =
					(char *)buf + done;
				memset(&rs[i], 0, sizeof(rs[i]));
				e = run(c, &of->cr, b.ops, b.n, &rs[i]);
			}
			if (e && c->broken)
				break; /* resent from here once reconnected */
			if (!err && e)
				err = e;
			if (err)
				break;
			if (rs[i].written != lens[i]) {
				err = -EIO; /* short write: stop at the gap */
				break;
			}
			if (rs[i].committed == UNSTABLE4)
				dirty = 1;
			done += lens[i];
		}
		if (!err && c->broken) {
			if (time(NULL) >= deadline)
				err = -EIO;
			else if (conn_reconnect(c) != 0)
				usleep(500000);
		}
	}
	conn_put(c);
	if (dirty) {
		pthread_mutex_lock(&of->lock);
		of->dirty = 1;
		pthread_mutex_unlock(&of->lock);
	}
	if (err && done == 0)
		return err;
	return (int)done;
}

static int commit(struct ofile *of)
{
	struct conn *c;
	struct cbuild b;
	struct reply r;
	int err;

	pthread_mutex_lock(&of->lock);
	if (!of->dirty) {
		pthread_mutex_unlock(&of->lock);
		return 0;
	}
	of->dirty = 0;
	pthread_mutex_unlock(&of->lock);
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	cb_putfh(&b, &of->fh);
	cb_op(&b, OP_COMMIT); /* offset 0, count 0: the whole file */
	err = run(c, &of->cr, b.ops, b.n, &r);
	conn_put(c);
	if (err) {
		pthread_mutex_lock(&of->lock);
		of->dirty = 1;
		pthread_mutex_unlock(&of->lock);
	}
	return err;
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	/* data reaches stable storage at close, as with the kernel client */
	return commit(ofile_of(fi));
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	return commit(ofile_of(fi));
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	struct ofile *of = ofile_of(fi);

	(void)path;
	commit(of);
	if (of->fix_mode) {
		struct conn *c = conn_get();
		struct cbuild b;
		struct reply r;
		struct fattr_out fo;
		struct setattrs s = { .what = SA_MODE, .mode = of->final_mode };
		nfs_argop4 *op;

		cb_init(&b);
		memset(&r, 0, sizeof(r));
		cb_putfh(&b, &of->fh);
		encode_setattrs(&s, &fo);
		op = cb_op(&b, OP_SETATTR);
		op->nfs_argop4_u.opsetattr.stateid = anon_stateid;
		fattr_from(&op->nfs_argop4_u.opsetattr.obj_attributes, &fo);
		if (run(c, &of->cr, b.ops, b.n, &r))
			logmsg(LOG_WARNING, "cannot set the final mode of %s",
			       path ? path : "a created file");
		conn_put(c);
	}
	pthread_mutex_destroy(&of->lock);
	free(of);
	return 0;
}

static int op_statfs(const char *path, struct statvfs *sv)
{
	struct creds cr;
	struct conn *c;
	struct cbuild b;
	struct reply r;
	int err;

	(void)path;
	caller_creds(&cr);
	c = conn_get();
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	cb_putfh(&b, &root_fh);
	cb_getattr(&b, STATFS_ATTRS);
	err = run(c, &cr, b.ops, b.n, &r);
	conn_put(c);
	if (err)
		return err;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_blocks = r.attr.space_total / 4096;
	sv->f_bfree = r.attr.space_free / 4096;
	sv->f_bavail = r.attr.space_avail / 4096;
	sv->f_files = r.attr.files_total;
	sv->f_ffree = r.attr.files_free;
	sv->f_favail = r.attr.files_avail;
	sv->f_namemax = r.attr.maxname ? r.attr.maxname : 255;
	return 0;
}

struct dirfill {
	void *buf;
	fuse_fill_dir_t filler;
	int plus;
	int full;
};

static void dirent_cb(void *arg, const char *name, size_t namelen,
		      const fattr4 *attrs)
{
	struct dirfill *d = arg;
	char nm[NAME_MAX + 1];
	struct nattr a;
	struct stat st;

	if (d->full || namelen == 0 || namelen > NAME_MAX)
		return;
	memcpy(nm, name, namelen);
	nm[namelen] = '\0';
	if (parse_fattr(attrs, &a) == 0 && (a.have & BIT(FATTR4_TYPE)) &&
	    (a.have & BIT(FATTR4_FILEID))) {
		nattr_to_stat(&a, &st);
		if (d->filler(d->buf, nm, &st, 0,
			      d->plus ? FUSE_FILL_DIR_PLUS : 0))
			d->full = 1;
	} else if (d->filler(d->buf, nm, NULL, 0, 0)) {
		d->full = 1;
	}
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct creds cr;
	struct conn *c;
	struct fh dirfh;
	struct nattr da;
	struct dirfill d = { buf, filler, (flags & FUSE_READDIR_PLUS) != 0, 0 };
	uint64_t cookie = 0;
	char verf[NFS4_VERIFIER_SIZE] = { 0 };
	int err;

	(void)off;
	(void)fi;
	caller_creds(&cr);
	err = do_getattr(path, NULL, &cr, &da, &dirfh);
	if (err)
		return err;
	if (da.type != NF4DIR)
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	c = conn_get();
	for (;;) {
		struct cbuild b;
		struct reply r;
		nfs_argop4 *op;
		uint32_t *bm;

		cb_init(&b);
		memset(&r, 0, sizeof(r));
		r.dir_cb = dirent_cb;
		r.dir_arg = &d;
		cb_putfh(&b, &dirfh);
		op = cb_op(&b, OP_READDIR);
		bm = b.bitmap[b.nbitmaps++];
		bm[0] = (uint32_t)STD_ATTRS;
		bm[1] = (uint32_t)(STD_ATTRS >> 32);
		op->nfs_argop4_u.opreaddir.cookie = cookie;
		memcpy(op->nfs_argop4_u.opreaddir.cookieverf, verf,
		       NFS4_VERIFIER_SIZE);
		op->nfs_argop4_u.opreaddir.dircount = 16384;
		op->nfs_argop4_u.opreaddir.maxcount = 262144;
		op->nfs_argop4_u.opreaddir.attr_request.bitmap4_len = 2;
		op->nfs_argop4_u.opreaddir.attr_request.bitmap4_val = bm;
		r.last_cookie = cookie;
		err = run(c, &cr, b.ops, b.n, &r);
		if (err || r.dir_eof || d.full || r.last_cookie == cookie)
			break;
		cookie = r.last_cookie;
		memcpy(verf, r.cookieverf, NFS4_VERIFIER_SIZE);
	}
	conn_put(c);
	return err;
}

static int op_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	(void)path;
	(void)mode;
	(void)off;
	(void)len;
	(void)fi;
	/* NFSv4.0 has no ALLOCATE: glibc and InnoDB fall back to writes */
	return -EOPNOTSUPP;
}

static const struct fuse_operations ops = {
	.init = op_init,
	.getattr = op_getattr,
	.access = op_access,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.link = op_link,
	.chmod = op_chmod,
	.chown = op_chown,
	.truncate = op_truncate,
	.utimens = op_utimens,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.statfs = op_statfs,
	.readdir = op_readdir,
	.fallocate = op_fallocate,
};

/* ------------------------------------------------------------------ */
/* Mounting                                                            */

static void die_mount(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_mount(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": mounting %s on %s failed: ", cfg.source,
		cfg.target);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_MOUNT_FAILURE);
}

static void random_bytes(void *buf, size_t len)
{
	FILE *f = fopen("/dev/urandom", "rb");

	if (f == NULL || fread(buf, 1, len, f) != len) {
		unsigned char *p = buf;

		for (size_t i = 0; i < len; i++)
			p[i] = (unsigned char)(rand() ^ (int)getpid());
	}
	if (f)
		fclose(f);
}

static void conn_identity(struct conn *c, int idx)
{
	char host[64];
	char nonce[8];

	memset(c, 0, sizeof(*c));
	c->idx = idx;
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(c->hostname, sizeof(c->hostname), "%s", host);
	random_bytes(nonce, sizeof(nonce));
	random_bytes(c->verifier, sizeof(c->verifier));
	snprintf(c->client_name, sizeof(c->client_name),
		 PROG "/%s/%d/%d/%02x%02x%02x%02x", host, (int)getpid(), idx,
		 (unsigned char)nonce[0], (unsigned char)nonce[1],
		 (unsigned char)nonce[2], (unsigned char)nonce[3]);
}

/* (Re)connects: a fresh libnfs context, mounted.  0, or -1 and why. */
static int conn_connect(struct conn *c, char *why, size_t whylen)
{
	char url[PATH_MAX + 300];
	char mname[200];
	struct nfs_context *nfs;
	struct nfs_url *u;

	nfs = nfs_init_context();
	if (nfs == NULL) {
		snprintf(why, whylen, "cannot create an NFS context");
		return -1;
	}
	/* the session libnfs opens while mounting has a name of its own */
	snprintf(mname, sizeof(mname), "%s/mount/%u", c->client_name,
		 c->sessions++);
	nfs4_set_client_name(nfs, mname);
	snprintf(url, sizeof(url), "nfs://%s%s?version=4&nfsport=%d",
		 cfg.server, cfg.export_path, cfg.port);
	u = nfs_parse_url_dir(nfs, url);
	if (u == NULL) {
		snprintf(why, whylen, "bad server or path: %s",
			 nfs_get_error(nfs));
		nfs_destroy_context(nfs);
		return -1;
	}
	nfs_set_timeout(nfs, 15000);
	if (nfs_mount(nfs, u->server, u->path) != 0) {
		snprintf(why, whylen, "server %s port %d, export %s: %s",
			 cfg.server, cfg.port, cfg.export_path,
			 nfs_get_error(nfs));
		nfs_destroy_url(u);
		nfs_destroy_context(nfs);
		return -1;
	}
	nfs_destroy_url(u);
	/* a dead connection is rebuilt here rather than inside libnfs */
	nfs_set_timeout(nfs, 0);
	nfs_set_autoreconnect(nfs, 0);
	if (c->nfs)
		nfs_destroy_context(c->nfs);
	c->nfs = nfs;
	c->rpc = nfs_get_rpc_context(nfs);
	c->broken = 0;
	c->have_auth = 0;
	c->have_clientid = 0;
	return 0;
}

/* Names why the server cannot be reached, in plain words, or returns 0. */
static int probe_server(char *why, size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	char port[16];
	int gai, err = ETIMEDOUT;

	snprintf(port, sizeof(port), "%d", cfg.port);
	gai = getaddrinfo(cfg.server, port, &hints, &ai);
	if (gai != 0) {
		snprintf(why, whylen, "server %s: %s", cfg.server,
			 gai_strerror(gai));
		return -1;
	}
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		socklen_t len = sizeof(err);

		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			err = 0;
		} else if (errno != EINPROGRESS) {
			err = errno;
		} else if (poll(&pfd, 1, 10000) <= 0) {
			err = ETIMEDOUT;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
			err = errno;
		}
		close(fd);
		if (err == 0)
			break;
	}
	freeaddrinfo(ai);
	if (err == 0)
		return 0;
	snprintf(why, whylen, "server %s port %d unreachable: %s", cfg.server,
		 cfg.port, strerror(err));
	return -1;
}

static void conn_open(struct conn *c, int idx)
{
	char why[512];

	conn_identity(c, idx);
	if (idx == 0 && probe_server(why, sizeof(why)) != 0)
		die_mount("%s", why);
	if (conn_connect(c, why, sizeof(why)) != 0)
		die_mount("%s", why);
}

/* Export root handle and transfer sizes, looked up as uid 0 (squashed). */
static void lookup_root(struct conn *c)
{
	struct creds root = { 0 };
	struct cbuild b;
	struct reply r;
	char *copy = strdup(cfg.export_path);
	char *save = NULL, *tok;
	int err;

	if (copy == NULL)
		die_mount("out of memory");
	cb_init(&b);
	memset(&r, 0, sizeof(r));
	cb_simple(&b, OP_PUTROOTFH);
	for (tok = strtok_r(copy, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		nfs_argop4 *op;

		if (b.n >= MAX_OPS - 3)
			die_mount("export path %s is too deep", cfg.export_path);
		op = cb_op(&b, OP_LOOKUP);
		set_component(&op->nfs_argop4_u.oplookup.objname, tok);
	}
	cb_simple(&b, OP_GETFH);
	cb_getattr(&b, FSINFO_ATTRS);
	err = run(c, &root, b.ops, b.n, &r);
	if (err)
		die_mount("server %s, export %s: %s", cfg.server,
			  cfg.export_path, strerror(-err));
	if (!r.have_fh || !r.have_attr)
		die_mount("server %s, export %s: no file handle in the reply",
			  cfg.server, cfg.export_path);
	if (r.attr.type != NF4DIR)
		die_mount("server %s, export %s: not a directory", cfg.server,
			  cfg.export_path);
	root_fh = r.fh;
	if (r.attr.maxread >= 4096 && r.attr.maxread < max_read)
		max_read = (uint32_t)r.attr.maxread;
	if (r.attr.maxwrite >= 4096 && r.attr.maxwrite < max_write)
		max_write = (uint32_t)r.attr.maxwrite;
	if (cfg.rsize >= 4096 && cfg.rsize < max_read)
		max_read = cfg.rsize;
	if (cfg.wsize >= 4096 && cfg.wsize < max_write)
		max_write = cfg.wsize;
	free(copy);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: " PROG " SERVER:/PATH TARGET [-o options] [-f]\n"
		"  options: vers=4|4.0|4.1|4.2 (spoken as NFSv4.0), port=N,\n"
		"           nconnect=N, rsize=N, wsize=N, actimeo=N, noac,\n"
		"           ro, rw, nosuid, nodev, noexec, noatime, debug;\n"
		"           other NFS options (hard, proto=tcp, ...) are accepted\n"
		"           and have no effect\n");
	exit(EXIT_USAGE);
}

static void add_fuse_flag(const char *flag)
{
	size_t len = strlen(cfg.fuse_flags);

	snprintf(cfg.fuse_flags + len, sizeof(cfg.fuse_flags) - len, ",%s",
		 flag);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || end == s || *end || *out > max ? -1 : 0;
}

static void parse_options(char *opts)
{
	char *save = NULL;

	for (char *o = strtok_r(opts, ",", &save); o;
	     o = strtok_r(NULL, ",", &save)) {
		char *val = strchr(o, '=');
		unsigned long v;

		if (val)
			*val++ = '\0';
		if (!strcmp(o, "vers") || !strcmp(o, "nfsvers")) {
			if (!val)
				usage();
			if (strcmp(val, "4") && strncmp(val, "4.", 2)) {
				fprintf(stderr,
					PROG ": mounting %s on %s failed: "
					     "NFS version %s is not supported "
					     "(this client speaks NFSv4.0 only)\n",
					cfg.source, cfg.target, val);
				exit(EXIT_MOUNT_FAILURE);
			}
		} else if (!strcmp(o, "port")) {
			if (!val || parse_uint(val, 65535, &v))
				usage();
			cfg.port = v ? (int)v : 2049;
		} else if (!strcmp(o, "nconnect")) {
			if (!val || parse_uint(val, MAX_CONNS, &v) || v == 0)
				usage();
			cfg.nconn = (int)v;
		} else if (!strcmp(o, "rsize") || !strcmp(o, "wsize")) {
			if (!val || parse_uint(val, UINT32_MAX, &v))
				usage();
			if (o[0] == 'r')
				cfg.rsize = (uint32_t)v;
			else
				cfg.wsize = (uint32_t)v;
		} else if (!strcmp(o, "actimeo")) {
			if (!val || parse_uint(val, 3600, &v))
				usage();
			cfg.attr_timeout = cfg.entry_timeout = (double)v;
		} else if (!strcmp(o, "noac")) {
			cfg.attr_timeout = cfg.entry_timeout = 0;
		} else if (!strcmp(o, "ro")) {
			cfg.read_only = 1;
			add_fuse_flag("ro");
		} else if (!strcmp(o, "rw")) {
			cfg.read_only = 0;
		} else if (!strcmp(o, "nosuid") || !strcmp(o, "nodev") ||
			   !strcmp(o, "noexec") || !strcmp(o, "noatime") ||
			   !strcmp(o, "nodiratime") || !strcmp(o, "relatime") ||
			   !strcmp(o, "dirsync") || !strcmp(o, "sync") ||
			   !strcmp(o, "async")) {
			add_fuse_flag(o);
		} else if (!strcmp(o, "debug")) {
			cfg.debug = 1;
		} else {
			/* hard, soft, timeo, retrans, proto, nolock, sec=sys,
			 * _netdev, ...: meaningful to the kernel client only */
		}
	}
}

static volatile sig_atomic_t probe_timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	probe_timed_out = 1;
}

/*
 * Forks the daemon.  The parent returns to mount(8) only once a stat of
 * the mount point has gone through the daemon (FUSE INIT and GETATTR
 * served); otherwise it takes the mount down and fails.
 */
static void detach(struct fuse *f)
{
	struct sigaction sa;
	struct stat st;
	pid_t pid;
	int fd, err, status;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fuse_unmount(f);
		die_mount("fork: %s", strerror(errno));
	}
	if (pid == 0) {
		if (setsid() < 0 || chdir("/") != 0)
			_exit(EXIT_MOUNT_FAILURE);
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
		openlog(PROG, LOG_PID, LOG_DAEMON);
		daemonized = 1;
		return;
	}
	/* parent: without its copy of /dev/fuse, a dead child fails the probe */
	close(fuse_session_fd(fuse_get_session(f)));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(PROBE_TIMEOUT_S);
	err = stat(cfg.target, &st) == 0 ? 0 : errno;
	alarm(0);
	if (err == 0 && S_ISDIR(st.st_mode))
		_exit(0);
	if (probe_timed_out)
		err = ETIMEDOUT;
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	umount2(cfg.target, MNT_DETACH);
	fprintf(stderr,
		PROG ": mounting %s on %s failed: the mount did not answer: %s\n",
		cfg.source, cfg.target, strerror(err ? err : ENOTDIR));
	_exit(EXIT_MOUNT_FAILURE);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc;
	struct fuse *f;
	char *opts = NULL, *colon;
	char fsopts[PATH_MAX + 512];
	int pos = 0, ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o")) {
			if (++i >= argc)
				usage();
			if (opts) {
				char *joined;

				if (asprintf(&joined, "%s,%s", opts, argv[i]) < 0)
					return EXIT_USAGE;
				free(opts);
				opts = joined;
			} else {
				opts = strdup(argv[i]);
			}
		} else if (!strcmp(argv[i], "-f")) {
			cfg.foreground = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
		} else if (pos == 0) {
			cfg.source = argv[i];
			pos++;
		} else if (pos == 1) {
			cfg.target = argv[i];
			pos++;
		} else {
			usage();
		}
	}
	if (pos != 2)
		usage();
	colon = strchr(cfg.source, ':');
	if (colon == NULL || colon == cfg.source || colon[1] != '/') {
		fprintf(stderr, PROG ": %s: expected SERVER:/PATH\n", cfg.source);
		return EXIT_USAGE;
	}
	cfg.server = strndup(cfg.source, (size_t)(colon - cfg.source));
	cfg.export_path = strdup(colon + 1);
	if (opts)
		parse_options(opts);

	if (access(cfg.target, F_OK) != 0)
		die_mount("mount point %s: %s", cfg.target, strerror(errno));

	nconns = cfg.nconn;
	for (int i = 0; i < nconns; i++)
		conn_open(&conns[i], i);
	lookup_root(&conns[0]);

	/* fsname must not carry a comma: libfuse splits options on it */
	if (strchr(cfg.source, ',') != NULL)
		die_mount("a comma in the source is not supported");
	snprintf(fsopts, sizeof(fsopts),
		 "-oallow_other,fsname=%s,subtype=kubess-nfs%s", cfg.source,
		 cfg.fuse_flags);
	fuse_opt_add_arg(&args, PROG);
	fuse_opt_add_arg(&args, fsopts);
	if (cfg.debug)
		fuse_opt_add_arg(&args, "-d");
	f = fuse_new(&args, &ops, sizeof(ops), NULL);
	if (f == NULL)
		die_mount("cannot set up FUSE (is /dev/fuse there?)");
	if (fuse_mount(f, cfg.target) != 0) {
		fuse_destroy(f);
		die_mount("FUSE mount on %s refused", cfg.target);
	}
	if (!cfg.foreground)
		detach(f);
	if (fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
		fuse_unmount(f);
		fuse_destroy(f);
		exit(EXIT_MOUNT_FAILURE);
	}
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, (unsigned)nconns * 2 + 2);
	fuse_loop_cfg_set_idle_threads(lc, (unsigned)nconns);
	ret = fuse_loop_mt(f, lc);
	fuse_loop_cfg_destroy(lc);
	fuse_remove_signal_handlers(fuse_get_session(f));
	fuse_unmount(f);
	fuse_destroy(f);
	for (int i = 0; i < nconns; i++)
		nfs_destroy_context(conns[i].nfs);
	fuse_opt_free_args(&args);
	return ret == 0 ? 0 : 1;
}
