/*  =========================================================================
    sf_sched_classes - private umbrella header of the scheduler's classes

    Every .c file of the scheduler includes this one header: the shared
    core (czmq, sf_err, sf_log, sf_wire, ...), the external libraries the
    scheduler uses (SQLite, jansson) and every scheduler class, in
    dependency order.
    =========================================================================
*/
#ifndef SF_SCHED_CLASSES_H_INCLUDED
#define SF_SCHED_CLASSES_H_INCLUDED

#include "sf_core.h"

#include <jansson.h>
#include <sqlite3.h>

#include "sf_admit.h"
#include "sf_plan.h"
#include "sf_calendar.h"
#include "sf_strategy.h"
#include "sf_store.h"
#include "sf_jobs.h"
#include "sf_imgcheck.h"
#include "sf_peers.h"
#include "sf_liveness.h"
#include "sf_outbox.h"
#include "sf_stats.h"
#include "sf_schedcfg.h"
#include "sf_lease.h"
#include "sf_dispatch.h"
#include "sf_bulk.h"
#include "sf_imgrec.h"
#include "sf_restores.h"
#include "sf_restore.h"
#include "sf_verifies.h"
#include "sf_verify.h"
#include "sf_chain.h"
#include "sf_schedules.h"
#include "sf_retention.h"
#include "sf_history.h"
#include "sf_gc.h"
#include "sf_admin.h"
#include "sf_sched.h"

#endif
