/*  =========================================================================
    sf_strategy - the scheduler's names for the strategy rules; the rules
    themselves are the table in proto/sf_strategies.c
    =========================================================================
*/
#include "sf_sched_classes.h"

const char *
sf_strategy_choose (const char *state, const char *storage_class, sf_err_t *err)
{
    return sf_strategies_choose (state, storage_class, err);
}

bool
sf_strategy_known (const char *name)
{
    return sf_strategies_known (name);
}

int
sf_strategy_check (const char *strategy, const char *instance, const char *state,
                   const char *storage_class, sf_err_t *err)
{
    return sf_strategies_check (strategy, instance, state, storage_class, err);
}

bool
sf_strategy_needs_ceph (const char *strategy)
{
    return sf_strategies_needs_ceph (strategy);
}

//  --------------------------------------------------------------------------
//  Self test: the rules are tested with the table (core.sf_strategies);
//  here, that each name reaches them

void
sf_strategy_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_strategy: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    assert (streq (sf_strategy_choose ("shutoff", "rbd", &err), SF_STRATEGY_OFFLINE));
    assert (sf_strategy_choose ("running", "nfs", &err) == NULL && err.code == SF_ENOTSUP);
    assert (sf_strategy_check ("rbd", "g1", "running", "file", &err) == -1);
    assert (err.code == SF_EINVAL);
    assert (streq (err.text,
                   "strategy 'rbd' does not fit instance 'g1' (storage class file, running)"));
    assert (sf_strategy_check ("mixed", "g1", "paused", "mixed", &err) == 0);
    assert (sf_strategy_known ("mixed") && !sf_strategy_known ("File-Cold"));
    assert (sf_strategy_needs_ceph ("rbd") && !sf_strategy_needs_ceph ("offline"));
    //  @end
    printf ("OK\n");
}
