/*  =========================================================================
    sf_worker_classes - private umbrella header of the worker's classes

    Every worker .c file includes this one header, as czmq's classes
    include czmq_classes.h: the shared core first, then the worker classes
    in dependency order.
    =========================================================================
*/
#ifndef SF_WORKER_CLASSES_H_INCLUDED
#define SF_WORKER_CLASSES_H_INCLUDED

#include "sf_core.h"

#include "sf_text.h"
#include "sf_jobmsg.h"
#include "sf_proc.h"
#include "sf_bucket.h"
#include "sf_hv.h"
#include "sf_hv_domxml.h"
#include "sf_conv.h"
#include "sf_readback.h"
#include "sf_imgstore.h"
#include "sf_stor.h"
#include "sf_leftover.h"
#include "sf_prune.h"
#include "sf_pruneq.h"
#include "sf_reconcile.h"
#include "sf_guard.h"
#include "sf_scan.h"
#include "sf_joblog.h"
#include "sf_task.h"
#include "sf_restore.h"
#include "sf_verify.h"
#include "sf_jobtab.h"
#include "sf_unacked.h"
#include "sf_agent_cfg.h"
#include "sf_agent.h"

#endif
