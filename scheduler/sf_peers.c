/*  =========================================================================
    sf_peers - the scheduler's in-memory table of worker peers

    Routing ids are binary; the by-routing-id index keys them by their hex
    string (zframe_strhex), which zhashx can hash and compare.
    =========================================================================
*/
#include "sf_sched_classes.h"

struct _sf_peers_t {
    zhashx_t *by_name;          //  Owned: name -> sf_peer_t (owns peers)
    zhashx_t *by_routing_id;    //  Owned: hex routing id -> sf_peer_t
                                //  (borrowed from by_name)
    size_t max_peers;           //  Nodes the table holds at most
    uint32_t max_jobs;          //  Cap on a worker's max_jobs
    uint64_t refused;           //  Hellos refused because the table is full
};

//  --------------------------------------------------------------------------
//  Peer lifecycle (file-local: the table owns its peers)

static sf_peer_t *
s_peer_new (const char *name)
{
    sf_peer_t *peer = (sf_peer_t *) zmalloc (sizeof (sf_peer_t));
    peer->name = strdup (name);
    peer->software = strdup ("");
    peer->store = strdup (name);
    peer->ceph_cluster = strdup ("");
    peer->strategies = zlistx_new ();
    zlistx_set_destructor (peer->strategies, (zlistx_destructor_fn *) zstr_free);
    return peer;
}

static void
s_peer_destroy (sf_peer_t **peer_p)
{
    if (*peer_p) {
        sf_peer_t *peer = *peer_p;
        free (peer->name);
        free (peer->software);
        free (peer->store);
        free (peer->ceph_cluster);
        zframe_destroy (&peer->routing_id);
        zlistx_destroy (&peer->strategies);
        free (peer);
        *peer_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Constructor and destructor

sf_peers_t *
sf_peers_new (void)
{
    sf_peers_t *self = (sf_peers_t *) zmalloc (sizeof (sf_peers_t));
    self->by_name = zhashx_new ();
    zhashx_set_destructor (self->by_name, (zhashx_destructor_fn *) s_peer_destroy);
    self->by_routing_id = zhashx_new ();
    self->max_peers = SF_PEERS_MAX_DEFAULT;
    self->max_jobs = SF_PEERS_MAX_JOBS_DEFAULT;
    return self;
}

void
sf_peers_set_caps (sf_peers_t *self, size_t max_peers, uint32_t max_jobs)
{
    assert (self);
    assert (max_peers > 0 && max_jobs > 0);
    self->max_peers = max_peers;
    self->max_jobs = max_jobs;
}

bool
sf_peers_admits (sf_peers_t *self, const char *name)
{
    assert (self && name);
    if (sf_peers_by_name (self, name) || zhashx_size (self->by_name) < self->max_peers)
        return true;
    self->refused++;
    return false;
}

uint64_t
sf_peers_refused (sf_peers_t *self)
{
    assert (self);
    return self->refused;
}

void
sf_peers_destroy (sf_peers_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_peers_t *self = *self_p;
        zhashx_destroy (&self->by_routing_id);
        zhashx_destroy (&self->by_name);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Hello and restore

static void
s_unbind (sf_peers_t *self, sf_peer_t *peer)
{
    if (peer->routing_id) {
        char *key = zframe_strhex (peer->routing_id);
        zhashx_delete (self->by_routing_id, key);
        free (key);
        zframe_destroy (&peer->routing_id);
    }
}

void
sf_peers_unbind (sf_peers_t *self, sf_peer_t *peer)
{
    assert (self && peer);
    s_unbind (self, peer);
}

sf_peer_t *
sf_peers_hello (sf_peers_t *self, zframe_t *routing_id, const sf_hello_t *hello,
                int64_t now_ms, bool *replaced)
{
    assert (self);
    assert (routing_id && hello && hello->node);
    //  This connection may have said hello under another name before
    sf_peer_t *previous = sf_peers_by_routing_id (self, routing_id);
    if (previous)
        s_unbind (self, previous);

    sf_peer_t *peer = sf_peers_by_name (self, hello->node);
    if (!peer) {
        peer = s_peer_new (hello->node);
        zhashx_insert (self->by_name, peer->name, peer);
    }
    *replaced = peer->routing_id && !zframe_eq (peer->routing_id, routing_id);
    s_unbind (self, peer);
    peer->routing_id = zframe_dup (routing_id);
    char *key = zframe_strhex (routing_id);
    zhashx_insert (self->by_routing_id, key, peer);
    free (key);

    free (peer->software);
    peer->software = strdup (hello->software? hello->software: "");
    free (peer->store);
    peer->store = strdup (hello->store && *hello->store? hello->store: hello->node);
    free (peer->ceph_cluster);
    peer->ceph_cluster = strdup (hello->ceph_cluster? hello->ceph_cluster: "");
    peer->scratch_free = hello->scratch_free;
    //  0 (no limit of its own) or more than the cap: the cap
    peer->max_jobs = hello->max_jobs && hello->max_jobs < self->max_jobs
                   ? hello->max_jobs: self->max_jobs;
    peer->max_pause_ms = (int64_t) hello->max_pause_ms;     //  sf_wire bounds it
    zlistx_purge (peer->strategies);
    for (size_t i = 0; i < hello->n_strategies; i++)
        zlistx_add_end (peer->strategies, strdup (hello->strategies [i]));
    peer->up = true;
    peer->last_msg_ms = now_ms;
    peer->persisted_ms = now_ms;
    return peer;
}

sf_peer_t *
sf_peers_restore (sf_peers_t *self, const char *name, int64_t now_ms)
{
    assert (self);
    sf_peer_t *peer = sf_peers_by_name (self, name);
    if (!peer) {
        peer = s_peer_new (name);
        zhashx_insert (self->by_name, peer->name, peer);
        peer->up = true;
        peer->last_msg_ms = now_ms;
        peer->persisted_ms = now_ms;
    }
    return peer;
}

//  --------------------------------------------------------------------------
//  Lookups

sf_peer_t *
sf_peers_by_routing_id (sf_peers_t *self, zframe_t *routing_id)
{
    assert (self);
    if (!routing_id)
        return NULL;
    char *key = zframe_strhex (routing_id);
    sf_peer_t *peer = (sf_peer_t *) zhashx_lookup (self->by_routing_id, key);
    free (key);
    return peer;
}

sf_peer_t *
sf_peers_by_name (sf_peers_t *self, const char *name)
{
    assert (self);
    return (sf_peer_t *) zhashx_lookup (self->by_name, name);
}

zlistx_t *
sf_peers_expired (sf_peers_t *self, int64_t now_ms, int64_t timeout_ms)
{
    assert (self);
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    for (sf_peer_t *peer = (sf_peer_t *) zhashx_first (self->by_name); peer;
         peer = (sf_peer_t *) zhashx_next (self->by_name))
        if (peer->up && now_ms - peer->last_msg_ms > timeout_ms)
            zlistx_add_end (names, strdup (peer->name));
    return names;
}

void
sf_peers_set_up (sf_peer_t *peer, bool up)
{
    assert (peer);
    peer->up = up;
}

bool
sf_peers_offers (const sf_peer_t *peer, const char *strategy)
{
    assert (peer);
    if (zlistx_size (peer->strategies) == 0)
        return true;
    for (const char *name = (const char *) zlistx_first (peer->strategies); name;
         name = (const char *) zlistx_next (peer->strategies))
        if (streq (name, strategy))
            return true;
    return false;
}

uint64_t
sf_peers_scratch (const sf_peer_t *peer)
{
    assert (peer);
    return peer->scratch_free? peer->scratch_free: UINT64_MAX;
}

size_t
sf_peers_up_count (sf_peers_t *self)
{
    assert (self);
    size_t count = 0;
    for (sf_peer_t *peer = (sf_peer_t *) zhashx_first (self->by_name); peer;
         peer = (sf_peer_t *) zhashx_next (self->by_name))
        count += peer->up? 1: 0;
    return count;
}

sf_peer_t *
sf_peers_first (sf_peers_t *self)
{
    assert (self);
    return (sf_peer_t *) zhashx_first (self->by_name);
}

sf_peer_t *
sf_peers_next (sf_peers_t *self)
{
    assert (self);
    return (sf_peer_t *) zhashx_next (self->by_name);
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_peers_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_peers: ");
    //  @selftest
    sf_peers_t *peers = sf_peers_new ();
    zframe_t *rid1 = zframe_new ("\x00\x01\x02\x03\x04", 5);
    zframe_t *rid2 = zframe_new ("\x00\x01\x02\x03\x05", 5);
    char *strategies [] = { "file-cold", "offline" };
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = "n1", hello.software = "w 0.1";
    hello.n_strategies = 2, hello.strategies = strategies;
    bool replaced = true;

    sf_peer_t *peer = sf_peers_hello (peers, rid1, &hello, 1000, &replaced);
    assert (peer && !replaced && peer->up);
    assert (sf_peers_by_routing_id (peers, rid1) == peer);
    assert (sf_peers_by_name (peers, "n1") == peer);
    assert (sf_peers_offers (peer, "offline"));
    assert (!sf_peers_offers (peer, "rbd"));

    //  Reconnect under the same name: the old routing id is forgotten
    assert (sf_peers_hello (peers, rid2, &hello, 2000, &replaced) == peer);
    assert (replaced);
    assert (sf_peers_by_routing_id (peers, rid1) == NULL);
    assert (sf_peers_by_routing_id (peers, rid2) == peer);
    //  The same connection says hello again: not a reconnect
    sf_peers_hello (peers, rid2, &hello, 2000, &replaced);
    assert (!replaced);

    //  Timeouts: only silent peers that are up
    sf_peers_restore (peers, "n2", 1500);
    assert (sf_peers_by_name (peers, "n2")->routing_id == NULL);
    assert (sf_peers_up_count (peers) == 2);
    zlistx_t *expired = sf_peers_expired (peers, 3000, 1000);
    assert (zlistx_size (expired) == 1);
    assert (streq ((char *) zlistx_first (expired), "n2"));
    zlistx_destroy (&expired);
    sf_peers_set_up (sf_peers_by_name (peers, "n2"), false);
    expired = sf_peers_expired (peers, 3500, 1000);
    assert (zlistx_size (expired) == 1);
    assert (streq ((char *) zlistx_first (expired), "n1"));
    zlistx_destroy (&expired);
    assert (sf_peers_up_count (peers) == 1);

    //  A connection that said hello as n1 now says hello as n3
    hello.node = "n3", hello.n_strategies = 0;
    sf_peer_t *n3 = sf_peers_hello (peers, rid2, &hello, 4000, &replaced);
    assert (sf_peers_by_routing_id (peers, rid2) == n3);
    assert (sf_peers_by_name (peers, "n1")->routing_id == NULL);
    assert (sf_peers_offers (n3, "anything"));

    //  max_jobs is capped per node; 0 (the worker sets none) is the cap too
    sf_peers_set_caps (peers, 3, 8);
    hello.max_jobs = 4;
    assert (sf_peers_hello (peers, rid2, &hello, 4100, &replaced)->max_jobs == 4);
    //  max_pause comes from the hello, 0 when the worker does not say
    assert (sf_peers_by_name (peers, hello.node)->max_pause_ms == 0);
    hello.max_pause_ms = 90000;
    assert (sf_peers_hello (peers, rid2, &hello, 4200, &replaced)->max_pause_ms == 90000);
    hello.max_jobs = 9;
    assert (sf_peers_hello (peers, rid2, &hello, 4100, &replaced)->max_jobs == 8);
    hello.max_jobs = 0;
    assert (sf_peers_hello (peers, rid2, &hello, 4100, &replaced)->max_jobs == 8);

    //  A full table (n1, n2, n3) admits the nodes it has, no new one, and
    //  counts the refusals
    assert (sf_peers_admits (peers, "n1") && sf_peers_admits (peers, "n3"));
    assert (sf_peers_refused (peers) == 0);
    assert (!sf_peers_admits (peers, "n4"));
    assert (!sf_peers_admits (peers, "n5"));
    assert (sf_peers_refused (peers) == 2);
    assert (sf_peers_by_name (peers, "n4") == NULL);
    sf_peers_set_caps (peers, 4, 8);
    assert (sf_peers_admits (peers, "n4"));

    zframe_destroy (&rid1);
    zframe_destroy (&rid2);
    sf_peers_destroy (&peers);
    assert (peers == NULL);
    //  @end
    printf ("OK\n");
}
