/*  =========================================================================
    sf_strategy - which snapshot strategy an instance gets

    Today: file-backed guests that run or are paused get "file-cold" (pause,
    convert, resume); shut-off domains with file disks get "offline"
    (convert directly). RBD and mixed storage get their own strategies in a
    later change; until then they are refused with a clear error rather
    than sent to a worker that cannot run them.
    =========================================================================
*/
#include "sf_sched_classes.h"

const char *
sf_strategy_choose (const char *state, const char *storage_class, sf_err_t *err)
{
    assert (state);
    assert (storage_class);
    if (streq (storage_class, "rbd") || streq (storage_class, "mixed")) {
        sf_err_set (err, SF_ENOTSUP,
                    "strategy for storage class '%s' is not implemented yet",
                    storage_class);
        return NULL;
    }
    if (streq (storage_class, "none") || !*storage_class) {
        sf_err_set (err, SF_EINVAL, "instance has no disks to snapshot");
        return NULL;
    }
    if (!streq (storage_class, "file")) {
        sf_err_set (err, SF_ENOTSUP, "unknown storage class '%s'", storage_class);
        return NULL;
    }
    if (streq (state, "running") || streq (state, "paused"))
        return SF_STRATEGY_FILE_COLD;
    if (streq (state, "shutoff"))
        return SF_STRATEGY_OFFLINE;
    sf_err_set (err, SF_ESTATE,
                "instance is in state '%s'; only running, paused or shut-off "
                "instances can be snapshotted", state);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_strategy_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_strategy: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    assert (streq (sf_strategy_choose ("running", "file", &err), "file-cold"));
    assert (streq (sf_strategy_choose ("paused", "file", &err), "file-cold"));
    assert (streq (sf_strategy_choose ("shutoff", "file", &err), "offline"));

    assert (sf_strategy_choose ("running", "rbd", &err) == NULL);
    assert (err.code == SF_ENOTSUP);
    assert (streq (err.text, "strategy for storage class 'rbd' is not implemented yet"));
    assert (sf_strategy_choose ("shutoff", "mixed", &err) == NULL);
    assert (streq (err.text, "strategy for storage class 'mixed' is not implemented yet"));
    assert (sf_strategy_choose ("running", "none", &err) == NULL);
    assert (err.code == SF_EINVAL);
    assert (sf_strategy_choose ("running", "", &err) == NULL);
    assert (sf_strategy_choose ("running", "nfs", &err) == NULL);
    assert (strstr (err.text, "unknown storage class 'nfs'"));
    assert (sf_strategy_choose ("other", "file", &err) == NULL);
    assert (err.code == SF_ESTATE);
    //  @end
    printf ("OK\n");
}
