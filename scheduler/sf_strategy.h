/*  =========================================================================
    sf_strategy - which snapshot strategy an instance gets, and which ones
    it may be given: the scheduler's names for the rules of
    proto/sf_strategies (one table, shared with the worker)
    =========================================================================
*/
#ifndef SF_STRATEGY_H_INCLUDED
#define SF_STRATEGY_H_INCLUDED

#include <stdbool.h>

//  Choose the default strategy for an instance in state (running|paused|
//  shutoff|other) with storage_class (file|rbd|mixed|none). Returns a
//  static string, or NULL with err set (err may be NULL): SF_EINVAL for an
//  instance without disks, SF_ENOTSUP for a storage class this scheduler
//  does not know, SF_ESTATE for a state that cannot be captured.
const char *
    sf_strategy_choose (const char *state, const char *storage_class,
                        sf_err_t *err);

//  True if name is a strategy this scheduler knows.
bool
    sf_strategy_known (const char *name);

//  Check that strategy may be used for the instance called instance (for
//  the message) in state with storage_class. Returns 0, or -1 with err
//  set: SF_EINVAL "unknown strategy 'x' ..." or "strategy 'rbd' does not
//  fit instance 'g1' (storage class file, running)".
int
    sf_strategy_check (const char *strategy, const char *instance,
                       const char *state, const char *storage_class,
                       sf_err_t *err);

//  True if strategy needs Ceph on the worker (RBD snapshots): the worker
//  announces it only when its [storage.rbd] is configured.
bool
    sf_strategy_needs_ceph (const char *strategy);

//  Self test of this class
void
    sf_strategy_test (bool verbose);

#endif
