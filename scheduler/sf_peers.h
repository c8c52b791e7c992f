/*  =========================================================================
    sf_peers - the scheduler's in-memory table of worker peers

    A peer is a node as seen on the wire: its name, the ZeroMQ routing id
    of its current connection, when it last said anything, and whether it
    is up. The database keeps the durable view (sf_store); this table keeps
    what only matters while the scheduler runs. Keyed both ways: by node
    name (a new Hello under the same name replaces the routing id) and by
    routing id (to find the node a message came from).
    =========================================================================
*/
#ifndef SF_PEERS_H_INCLUDED
#define SF_PEERS_H_INCLUDED

typedef struct _sf_peers_t sf_peers_t;

//  One peer. Fields are read by the scheduler; change them only through
//  the methods below (except running_jobs and persisted_ms, which the
//  scheduler keeps).
typedef struct {
    char *name;                 //  Owned: node name
    zframe_t *routing_id;       //  Owned; NULL for a node restored from the
                                //  database that has not said hello yet
    char *software;             //  Owned: "snapfleet-worker 0.1.0"
    zlistx_t *strategies;       //  Owned strings; empty = not announced
    bool up;                    //  Not timed out
    int64_t last_msg_ms;        //  Monotonic ms of the last message
    int64_t persisted_ms;       //  Monotonic ms last_seen was last stored
    uint32_t running_jobs;      //  From the last heartbeat
    char *store;                //  Owned: image store name (hello; the
                                //  node name if the worker gave none)
    char *ceph_cluster;         //  Owned: Ceph fsid, "" for none
    uint64_t scratch_free;      //  Bytes, from hello and heartbeats
    uint32_t max_jobs;          //  From hello, capped (sf_peers_set_caps)
    int64_t max_pause_ms;       //  From hello: its guard's deadline; 0 if
                                //  unknown (restored, or an older worker)
    int64_t rbd_snap_ms;        //  From heartbeats: its last RBD snapshot
                                //  round (the monitor's wait); 0 if none
} sf_peer_t;

//  Create an empty table. Caller owns the result.
sf_peers_t *
    sf_peers_new (void);

//  Default caps: nodes in the table, and jobs at once on one node
#define SF_PEERS_MAX_DEFAULT        1024
#define SF_PEERS_MAX_JOBS_DEFAULT   64

//  Set the caps: the table holds at most max_peers nodes (a hello from a
//  new node beyond it is refused, see sf_peers_admits), and a peer's
//  max_jobs is its worker's, capped at max_jobs (0 from the worker, "no
//  limit", is the cap too). Both must be positive.
void
    sf_peers_set_caps (sf_peers_t *self, size_t max_peers, uint32_t max_jobs);

//  True if a hello from node name may enter the table: it is known, or
//  the table has room. A refusal is counted (sf_peers_refused).
bool
    sf_peers_admits (sf_peers_t *self, const char *name);

//  Hellos refused so far because the table was full.
uint64_t
    sf_peers_refused (sf_peers_t *self);

//  Destroy the table and every peer. Nullifies *self_p.
void
    sf_peers_destroy (sf_peers_t **self_p);

//  A Hello from routing_id (copied) for node: create the peer or replace
//  its routing id, mark it up and seen at now_ms. If routing_id was bound
//  to another node before, that binding is dropped. Returns the peer
//  (owned by the table). *replaced is set true if the node already had a
//  different routing id (a reconnect).
sf_peer_t *
    sf_peers_hello (sf_peers_t *self, zframe_t *routing_id,
                    const sf_hello_t *hello, int64_t now_ms, bool *replaced);

//  The peer's connection is gone (a send to it failed as unreachable): it
//  keeps its state but has no routing id until it says hello again.
void
    sf_peers_unbind (sf_peers_t *self, sf_peer_t *peer);

//  Add a peer restored from the database (up, no routing id), seen at
//  now_ms, so that it times out like any other if it never comes back.
//  Does nothing if the node is already known. Returns the peer.
sf_peer_t *
    sf_peers_restore (sf_peers_t *self, const char *name, int64_t now_ms);

//  Look a peer up by routing id or by name. NULL if unknown. The peer
//  belongs to the table.
sf_peer_t *
    sf_peers_by_routing_id (sf_peers_t *self, zframe_t *routing_id);
sf_peer_t *
    sf_peers_by_name (sf_peers_t *self, const char *name);

//  Names of the peers that are up and have been silent for longer than
//  timeout_ms at now_ms. Caller owns the list (of strings). Marks nothing:
//  the caller records the change, then calls sf_peers_set_up.
zlistx_t *
    sf_peers_expired (sf_peers_t *self, int64_t now_ms, int64_t timeout_ms);

//  Mark a peer up or down.
void
    sf_peers_set_up (sf_peer_t *peer, bool up);

//  True if the peer announced strategy, or announced none at all.
bool
    sf_peers_offers (const sf_peer_t *peer, const char *strategy);

//  The scratch space admission may plan with on peer: what its worker
//  reported, or UINT64_MAX if it reported 0 (it does not measure it).
uint64_t
    sf_peers_scratch (const sf_peer_t *peer);

//  Number of peers that are up.
size_t
    sf_peers_up_count (sf_peers_t *self);

//  Iterate over every peer (no changes to the table while iterating).
sf_peer_t *
    sf_peers_first (sf_peers_t *self);
sf_peer_t *
    sf_peers_next (sf_peers_t *self);

//  Self test of this class
void
    sf_peers_test (bool verbose);

#endif
