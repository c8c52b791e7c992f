/*  =========================================================================
    sf_strategies - the snapshot strategies: one table of rules that the
    scheduler and the worker both apply

    The strategy follows from what the worker reports in its inventory: the
    instance's state and its storage class (derived from the domain XML,
    never configured). One table decides the default, whether a strategy
    the operator forces fits, and which strategies need Ceph on the
    worker, so that the instance listing, the snapshot command, --strategy
    and the worker's own checks can never disagree:

      strategy   storage class         state            needs Ceph
      file-live  file                  running, paused  no
      file-cold  file                  running, paused  no
      rbd        rbd                   running, paused  yes
      mixed      mixed                 running, paused  yes
      offline    file, rbd, mixed      shutoff          no

    The default is the first row that fits: file-live for running or
    paused file-backed instances (a live copy, the guest held for
    milliseconds at most); file-cold (paused for the whole conversion)
    fits the same instances and is only ever chosen with --strategy.
    --strategy cannot change what happens otherwise, only insist on it.
    States are named as sf_hv_state_name and the inventory names them:
    "running", "paused", "shutoff", "other"; storage classes "file",
    "rbd", "mixed", "none" ("" counts as "none").

    A misfit is SF_EINVAL "strategy 'rbd' does not fit instance 'g1'
    (storage class file, running)" on both sides; an unknown name SF_EINVAL
    "unknown strategy 'x' (known: file-live, file-cold, rbd, mixed,
    offline)".
    =========================================================================
*/
#ifndef SF_STRATEGIES_H_INCLUDED
#define SF_STRATEGIES_H_INCLUDED

//  Strategy names, on the wire, in the database and in the CLI
#define SF_STRATEGY_FILE_COLD   "file-cold"
#define SF_STRATEGY_FILE_LIVE   "file-live"
#define SF_STRATEGY_RBD         "rbd"
#define SF_STRATEGY_MIXED       "mixed"
#define SF_STRATEGY_OFFLINE     "offline"

//  Number of strategies, and the name of the i-th (table order: file-live,
//  file-cold, rbd, mixed, offline); NULL past the end.
size_t
    sf_strategies_count (void);
const char *
    sf_strategies_name (size_t index);

//  True if name is a strategy.
bool
    sf_strategies_known (const char *name);

//  The strategy for an instance in state with storage_class: a static
//  string, or NULL with err set (err may be NULL): SF_EINVAL for an
//  instance without disks, SF_ENOTSUP for an unknown storage class,
//  SF_ESTATE for a state that cannot be captured.
const char *
    sf_strategies_choose (const char *state, const char *storage_class, sf_err_t *err);

//  Check that strategy may be used for instance (its name, for the
//  message) in state with storage_class. Returns 0, or -1 with err set
//  (SF_EINVAL: unknown strategy, or one that does not fit).
int
    sf_strategies_check (const char *strategy, const char *instance, const char *state,
                         const char *storage_class, sf_err_t *err);

//  True if strategy needs Ceph on the worker (RBD snapshots): a worker
//  runs it only when its [storage.rbd] is configured.
bool
    sf_strategies_needs_ceph (const char *strategy);

//  True if an instance of storage_class can only be captured with Ceph
//  (it has RBD disks): "rbd" and "mixed".
bool
    sf_strategies_class_needs_ceph (const char *storage_class);

//  Self test of this class
void
    sf_strategies_test (bool verbose);

#endif
