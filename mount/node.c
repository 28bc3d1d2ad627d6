/*
 * node.c - the inode table: kernel inode number -> node.
 *
 * An RCU lock-free hash table (cds_lfht, urcu-memb flavour).  The I/O path
 * finds a node with rcu_read_lock() and no other lock: the node stays
 * valid after the read-side section because the kernel holds a lookup
 * reference on the inode for as long as it sends requests about it.
 * Creation and removal take fs.table_mu, so that the same segment is never
 * mapped twice (librvm refuses overlapping regions of one segment).
 * Removed nodes are freed with call_rcu.
 *
 * Inode numbers: the kernel sees the backing file's st_ino, except that the
 * root directory of tree/ is FUSE_ROOT_ID and whatever backing file has
 * inode number 1 (if any) takes the root's number.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static __thread bool rcu_registered;
static pthread_key_t rcu_key;
static pthread_once_t rcu_key_once = PTHREAD_ONCE_INIT;

/* FUSE's worker threads come and go; each registers on its first read-side
 * section and unregisters when it exits (the key's destructor). */
static void rcu_thread_exit(void *arg)
{
    (void)arg;
    if (rcu_registered) {
        urcu_memb_unregister_thread();
        rcu_registered = false;
    }
}

static void rcu_key_make(void)
{
    pthread_key_create(&rcu_key, rcu_thread_exit);
}

void rcu_thread_online(void)
{
    if (rcu_registered)
        return;
    pthread_once(&rcu_key_once, rcu_key_make);
    urcu_memb_register_thread();
    rcu_registered = true;
    pthread_setspecific(rcu_key, (void *)1);
}

fuse_ino_t ino_of(ino_t bino)
{
    if (bino == fs.root_bino)
        return FUSE_ROOT_ID;
    if (bino == FUSE_ROOT_ID)
        return (fuse_ino_t)fs.root_bino;
    return (fuse_ino_t)bino;
}

static unsigned long ino_hash(fuse_ino_t ino)
{
    uint64_t x = ino * 0x9e3779b97f4a7c15ull;
    return (unsigned long)(x ^ (x >> 29));
}

static int ino_match(struct cds_lfht_node *hn, const void *key)
{
    const struct node *n = caa_container_of(hn, struct node, hnode);
    return n->ino == *(const fuse_ino_t *)key;
}

/* Caller holds rcu_read_lock(). */
static struct node *table_lookup(fuse_ino_t ino)
{
    struct cds_lfht_iter it;
    cds_lfht_lookup(fs.nodes, ino_hash(ino), ino_match, &ino, &it);
    struct cds_lfht_node *hn = cds_lfht_iter_get_node(&it);
    return hn ? caa_container_of(hn, struct node, hnode) : NULL;
}

struct node *node_find(fuse_ino_t ino)
{
    rcu_thread_online();
    urcu_memb_read_lock();
    struct node *n = table_lookup(ino);
    urcu_memb_read_unlock();
    return n;
}

static struct node *node_alloc(fuse_ino_t ino, ino_t bino, enum node_kind k)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->ino = ino;
    n->bino = bino;
    n->kind = k;
    n->fd = -1;
    pthread_mutex_init(&n->mu, NULL);
    pthread_rwlock_init(&n->maplock, NULL);
    snprintf(n->segname, sizeof(n->segname), "%llu", (unsigned long long)bino);
    cds_lfht_node_init(&n->hnode);
    return n;
}

static void node_free_rcu(struct rcu_head *h)
{
    struct node *n = caa_container_of(h, struct node, rcu);
    pthread_mutex_destroy(&n->mu);
    pthread_rwlock_destroy(&n->maplock);
    free(n);
}

int nodes_init(void)
{
    rcu_thread_online();
    fs.nodes = cds_lfht_new_flavor(1024, 1024, 0, CDS_LFHT_AUTO_RESIZE,
                                   &urcu_memb_flavor, NULL);
    if (!fs.nodes)
        return -ENOMEM;
    struct node *root = node_alloc(FUSE_ROOT_ID, fs.root_bino, NODE_DIR);
    if (!root)
        return -ENOMEM;
    root->fd = fs.tree_fd;
    root->nlookup = 1; /* never forgotten */
    urcu_memb_read_lock();
    cds_lfht_add(fs.nodes, ino_hash(FUSE_ROOT_ID), &root->hnode);
    urcu_memb_read_unlock();
    return 0;
}

/* Open what a new node needs: a directory fd, an O_PATH fd, or the
 * segment's mapping.  Checks that the name still is the inode we stat'ed. */
static int node_open(struct node *n, int dirfd, const char *name)
{
    struct stat st;
    if (n->kind == NODE_REG)
        return seg_map(n);
    int flags = n->kind == NODE_DIR ? O_RDONLY | O_DIRECTORY : O_PATH;
    int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || st.st_ino != n->bino) {
        close(fd);
        return -ESTALE;
    }
    n->fd = fd;
    return 0;
}

int node_get_or_create(ino_t bino, const struct stat *st, int dirfd,
                       const char *name, struct node **out)
{
    fuse_ino_t ino = ino_of(bino);
    struct node *n;

    rcu_thread_online();
    urcu_memb_read_lock();
    n = table_lookup(ino);
    if (n) {
        pthread_mutex_lock(&n->mu);
        if (!n->dead) {
            n->nlookup++;
            pthread_mutex_unlock(&n->mu);
            urcu_memb_read_unlock();
            *out = n;
            return 0;
        }
        pthread_mutex_unlock(&n->mu);
    }
    urcu_memb_read_unlock();

    pthread_mutex_lock(&fs.table_mu);
    urcu_memb_read_lock();
    n = table_lookup(ino); /* removals happen under table_mu: not dead */
    urcu_memb_read_unlock();
    if (n) {
        pthread_mutex_lock(&n->mu);
        n->nlookup++;
        pthread_mutex_unlock(&n->mu);
        pthread_mutex_unlock(&fs.table_mu);
        *out = n;
        return 0;
    }
    enum node_kind k = S_ISDIR(st->st_mode) ? NODE_DIR
                       : S_ISREG(st->st_mode) ? NODE_REG : NODE_OTHER;
    n = node_alloc(ino, bino, k);
    if (!n) {
        pthread_mutex_unlock(&fs.table_mu);
        return -ENOMEM;
    }
    int rc = node_open(n, dirfd, name);
    if (rc < 0) {
        pthread_mutex_unlock(&fs.table_mu);
        node_free_rcu(&n->rcu);
        return rc;
    }
    n->nlookup = 1;
    urcu_memb_read_lock();
    cds_lfht_add(fs.nodes, ino_hash(ino), &n->hnode);
    urcu_memb_read_unlock();
    pthread_mutex_unlock(&fs.table_mu);
    *out = n;
    return 0;
}

/* Caller holds fs.table_mu and n->mu; releases n->mu.  Removes the node
 * once neither the kernel nor a transaction refers to it. */
static void node_maybe_remove(struct node *n)
{
    if (n->ino == FUSE_ROOT_ID || n->nlookup > 0 || n->txnrefs > 0 ||
        n->dead) {
        pthread_mutex_unlock(&n->mu);
        return;
    }
    n->dead = true;
    urcu_memb_read_lock();
    cds_lfht_del(fs.nodes, &n->hnode);
    urcu_memb_read_unlock();
    pthread_mutex_unlock(&n->mu);
    /* Still under table_mu: a new node of this inode cannot map the
     * segment before this mapping is gone. */
    if (n->kind == NODE_REG) {
        seg_unmap(n);
        struct stat st;
        if (fstatat(fs.seg_fd, n->segname, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_nlink <= 1)
            store_orphan_later(n->bino);
    }
    if (n->fd >= 0)
        close(n->fd);
    urcu_memb_call_rcu(&n->rcu, node_free_rcu);
}

void node_forget(fuse_ino_t ino, uint64_t count)
{
    rcu_thread_online();
    pthread_mutex_lock(&fs.table_mu);
    urcu_memb_read_lock();
    struct node *n = table_lookup(ino);
    urcu_memb_read_unlock();
    if (n) {
        pthread_mutex_lock(&n->mu);
        n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
        node_maybe_remove(n);
    }
    pthread_mutex_unlock(&fs.table_mu);
}

void node_txn_ref(struct node *n)
{
    /* caller holds n->mu */
    n->txnrefs++;
}

void node_txn_unref(struct node *n)
{
    pthread_mutex_lock(&fs.table_mu);
    pthread_mutex_lock(&n->mu);
    n->txnrefs--;
    node_maybe_remove(n);
    pthread_mutex_unlock(&fs.table_mu);
}

/* Call fn on every node in the table, inside an RCU read section. */
static void nodes_each(void (*fn)(struct node *))
{
    struct cds_lfht_iter it;
    rcu_thread_online();
    urcu_memb_read_lock();
    cds_lfht_first(fs.nodes, &it);
    for (struct cds_lfht_node *hn; (hn = cds_lfht_iter_get_node(&it));
         cds_lfht_next(fs.nodes, &it))
        fn(caa_container_of(hn, struct node, hnode));
    urcu_memb_read_unlock();
}

/* A file busy now is left for the next tick. */
static void release_applied(struct node *n)
{
    if (n->kind != NODE_REG || pthread_mutex_trylock(&n->mu) != 0)
        return;
    if (!n->dead && n->rel_bytes && !node_busy(n))
        seg_release_applied(n);
    pthread_mutex_unlock(&n->mu);
}

/* From the timer: copies of files no longer written, which their own
 * writes would have dropped (seg_idle) once truncation applied them. */
void nodes_release_applied(void)
{
    if (seg_release_pending())
        nodes_each(release_applied);
}

static void unmap_one(struct node *n)
{
    if (n->kind == NODE_REG)
        seg_unmap(n);
    else if (n->fd >= 0 && n->ino != FUSE_ROOT_ID) {
        close(n->fd);
        n->fd = -1;
    }
}

/* At shutdown, after every transaction ended: drop every mapping. */
void nodes_unmap_all(void)
{
    pthread_mutex_lock(&fs.table_mu);
    nodes_each(unmap_one);
    pthread_mutex_unlock(&fs.table_mu);
}

void nodes_fini(void)
{
    struct cds_lfht_iter it;
    if (!fs.nodes)
        return;
    urcu_memb_read_lock();
    cds_lfht_first(fs.nodes, &it);
    for (struct cds_lfht_node *hn; (hn = cds_lfht_iter_get_node(&it));
         cds_lfht_next(fs.nodes, &it)) {
        struct node *n = caa_container_of(hn, struct node, hnode);
        if (cds_lfht_del(fs.nodes, hn) == 0)
            urcu_memb_call_rcu(&n->rcu, node_free_rcu);
    }
    urcu_memb_read_unlock();
    urcu_memb_barrier();
    cds_lfht_destroy(fs.nodes, NULL);
    fs.nodes = NULL;
}

int node_stat(struct node *n, struct stat *st)
{
    int rc;
    switch (n->kind) {
    case NODE_REG:
        rc = fstatat(fs.seg_fd, n->segname, st, AT_SYMLINK_NOFOLLOW);
        if (rc == 0) {
            pthread_rwlock_rdlock(&n->maplock);
            st->st_size = (off_t)seg_size(n);
            pthread_rwlock_unlock(&n->maplock);
            if (st->st_nlink > 1)
                st->st_nlink--; /* the seg/<ino> name is ours */
            int64_t m = atomic_load(&n->mtime_ns);
            int64_t b = (int64_t)st->st_mtim.tv_sec * 1000000000 +
                        st->st_mtim.tv_nsec;
            if (m > b) {
                st->st_mtim.tv_sec = m / 1000000000;
                st->st_mtim.tv_nsec = m % 1000000000;
                st->st_ctim = st->st_mtim;
            }
            st->st_blocks = (st->st_size + 511) / 512;
        }
        break;
    case NODE_DIR:
        rc = fstat(n->fd, st);
        break;
    default:
        rc = fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        break;
    }
    if (rc < 0)
        return -errno;
    st->st_ino = n->ino;
    return 0;
}
