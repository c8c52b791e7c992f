/*  =========================================================================
    snapfleet_cmds - the CLI's commands, one snapfleet_<noun>.c each (git's
    builtin.h): snapfleet.c lists them in its command table
    =========================================================================
*/
#ifndef SNAPFLEET_CMDS_H_INCLUDED
#define SNAPFLEET_CMDS_H_INCLUDED

#include "snapfleet_opts.h"

//  snapfleet_node.c: nodes
extern const snapfleet_cmd_t snapfleet_cmd_nodes;

//  snapfleet_instance.c: instances
extern const snapfleet_cmd_t snapfleet_cmd_instances;

//  snapfleet_snapshot.c: snapshot of one instance (a job) or many (a bulk)
extern const snapfleet_cmd_t snapfleet_cmd_snapshot;

//  snapfleet_restore.c: restore of a stored image to a file (a job)
extern const snapfleet_cmd_t snapfleet_cmd_restore;
//  snapfleet_verify.c: verification of a stored image (a job)
extern const snapfleet_cmd_t snapfleet_cmd_verify;

//  snapfleet_bulk.c: bulk show, bulks
extern const snapfleet_cmd_t snapfleet_cmd_bulk;
extern const snapfleet_cmd_t snapfleet_cmd_bulks;

//  snapfleet_plan.c: plan (a bulk's dry run)
extern const snapfleet_cmd_t snapfleet_cmd_plan;

//  snapfleet_schedule.c: schedule add|list|rm
extern const snapfleet_cmd_t snapfleet_cmd_schedule;

//  snapfleet_job.c: jobs, job show
extern const snapfleet_cmd_t snapfleet_cmd_jobs;
extern const snapfleet_cmd_t snapfleet_cmd_job;

//  snapfleet_cancel.c: cancel jobs or a bulk
extern const snapfleet_cmd_t snapfleet_cmd_cancel;

//  snapfleet_image.c: images
extern const snapfleet_cmd_t snapfleet_cmd_images;

//  snapfleet_gc.c: gc (the reconciler, on demand)
extern const snapfleet_cmd_t snapfleet_cmd_gc;

//  snapfleet_status.c: status (the scheduler's counters)
extern const snapfleet_cmd_t snapfleet_cmd_status;

//  snapfleet_keygen.c: keygen (a CURVE key pair; needs no scheduler)
extern const snapfleet_cmd_t snapfleet_cmd_keygen;

#endif
