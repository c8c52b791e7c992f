/*  =========================================================================
    sf_jobtab - the worker's table of assigned jobs and the fencing rules
    =========================================================================
*/
#include "sf_worker_classes.h"

//  One job the scheduler assigned to us
typedef struct {
    char *job_id;               //  Owned
    uint32_t attempt;
    char uuid [37];             //  instance, lowercase
    zactor_t *task;             //  Owned while running
    zframe_t *result;           //  Owned once finished
    bool asked;                 //  the task sent UPLOAD_WAIT
    bool granted;               //  GRANT sent to the task
    bool held;                  //  a grant came before the task asked
    uint64_t held_rate;
    int phase;                  //  last phase the task reported
    uint64_t bytes;             //  bytes of its last event
} job_t;

//  Structure of our class

struct _sf_jobtab_t {
    zhashx_t *jobs;             //  job_id -> job_t (owned)
    zlistx_t *finished;         //  job ids, oldest first (owned strings)
    size_t keep;
    size_t running;
};

static void
s_job_destroy (job_t **job_p)
{
    if (*job_p) {
        job_t *job = *job_p;
        zactor_destroy (&job->task);    //  a running task is cancelled
        zframe_destroy (&job->result);
        free (job->job_id);
        free (job);
        *job_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Constructor

sf_jobtab_t *
sf_jobtab_new (size_t keep)
{
    sf_jobtab_t *self = (sf_jobtab_t *) zmalloc (sizeof (sf_jobtab_t));
    self->keep = keep;
    self->jobs = zhashx_new ();
    zhashx_set_destructor (self->jobs, (zhashx_destructor_fn *) s_job_destroy);
    self->finished = zlistx_new ();
    zlistx_set_duplicator (self->finished, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (self->finished, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (self->finished, (zlistx_comparator_fn *) strcmp);
    return self;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_jobtab_destroy (sf_jobtab_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_jobtab_t *self = *self_p;
        zhashx_destroy (&self->jobs);
        zlistx_destroy (&self->finished);
        free (self);
        *self_p = NULL;
    }
}

//  Forget a finished job

static void
s_forget (sf_jobtab_t *self, const char *job_id)
{
    if (zlistx_find (self->finished, (void *) job_id))
        zlistx_delete (self->finished, zlistx_cursor (self->finished));
    zhashx_delete (self->jobs, job_id);
}

sf_jobtab_verdict_t
sf_jobtab_fence (sf_jobtab_t *self, const char *job_id, uint32_t attempt, uint32_t *known)
{
    assert (self && job_id);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    if (known)
        *known = job ? job->attempt : 0;
    if (!job)
        return SF_JOBTAB_START;
    if (attempt < job->attempt)
        return SF_JOBTAB_STALE;
    if (attempt == job->attempt)
        return job->task ? SF_JOBTAB_RUNNING : SF_JOBTAB_RESEND;
    if (job->task)
        return SF_JOBTAB_BUSY;
    s_forget (self, job_id);
    return SF_JOBTAB_START;
}

void
sf_jobtab_start (sf_jobtab_t *self, const char *job_id, uint32_t attempt,
                 const char *uuid, zactor_t **task_p)
{
    assert (self && job_id && uuid && task_p);
    assert (!zhashx_lookup (self->jobs, job_id));
    job_t *job = (job_t *) zmalloc (sizeof (job_t));
    job->job_id = strdup (job_id);
    job->attempt = attempt;
    snprintf (job->uuid, sizeof (job->uuid), "%s", uuid);
    for (char *c = job->uuid; *c; c++)
        *c = (char) tolower ((unsigned char) *c);
    job->task = *task_p;
    *task_p = NULL;
    job->phase = SF_PHASE_QUEUED;
    zhashx_insert (self->jobs, job_id, job);
    self->running++;
}

const char *
sf_jobtab_job_of (sf_jobtab_t *self, zsock_t *sock)
{
    assert (self);
    job_t *job = (job_t *) zhashx_first (self->jobs);
    for (; job; job = (job_t *) zhashx_next (self->jobs))
        if (job->task && zactor_sock (job->task) == sock)
            return job->job_id;
    return NULL;
}

uint32_t
sf_jobtab_attempt (sf_jobtab_t *self, const char *job_id)
{
    assert (self && job_id);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    return job ? job->attempt : 0;
}

zactor_t *
sf_jobtab_task (sf_jobtab_t *self, const char *job_id, uint32_t attempt)
{
    assert (self && job_id);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    return job && job->attempt == attempt ? job->task : NULL;
}

const char *
sf_jobtab_running_on (sf_jobtab_t *self, const char *uuid)
{
    assert (self && uuid);
    job_t *job = (job_t *) zhashx_first (self->jobs);
    for (; job; job = (job_t *) zhashx_next (self->jobs))
        if (job->task && strcasecmp (job->uuid, uuid) == 0)
            return job->job_id;
    return NULL;
}

//  Keep *result_p as job's result; forget the oldest beyond keep

static void
s_keep_result (sf_jobtab_t *self, job_t *job, zframe_t **result_p)
{
    zframe_destroy (&job->result);
    job->result = *result_p;
    *result_p = NULL;
    zlistx_add_end (self->finished, job->job_id);
    while (zlistx_size (self->finished) > self->keep) {
        char *oldest = (char *) zlistx_first (self->finished);
        zhashx_delete (self->jobs, oldest);
        zlistx_delete (self->finished, zlistx_cursor (self->finished));
    }
}

void
sf_jobtab_finish (sf_jobtab_t *self, const char *job_id, zframe_t **result_p)
{
    assert (self && job_id && result_p);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    assert (job && job->task);
    zactor_destroy (&job->task);
    self->running--;
    s_keep_result (self, job, result_p);
}

void
sf_jobtab_restore (sf_jobtab_t *self, const char *job_id, uint32_t attempt,
                   const char *uuid, zframe_t **result_p)
{
    assert (self && job_id && uuid && result_p && *result_p);
    if (zhashx_lookup (self->jobs, job_id))
        s_forget (self, job_id);
    job_t *job = (job_t *) zmalloc (sizeof (job_t));
    job->job_id = strdup (job_id);
    job->attempt = attempt;
    snprintf (job->uuid, sizeof (job->uuid), "%s", uuid);
    job->phase = SF_PHASE_DONE;
    zhashx_insert (self->jobs, job_id, job);
    s_keep_result (self, job, result_p);
}

void
sf_jobtab_progress (sf_jobtab_t *self, const char *job_id, int phase, uint64_t bytes)
{
    assert (self && job_id);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    if (job && job->task) {
        job->phase = phase;
        job->bytes = bytes;
    }
}

int
sf_jobtab_status (sf_jobtab_t *self, const char *job_id, uint32_t attempt, int *phase,
                  uint64_t *bytes)
{
    assert (self && job_id && phase && bytes);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    *phase = 0;
    *bytes = 0;
    if (!job)
        return SF_JOB_STATE_UNKNOWN;
    if (job->attempt != attempt)
        return SF_JOB_STATE_STALE;
    *phase = job->task ? job->phase : SF_PHASE_DONE;
    *bytes = job->task ? job->bytes : 0;
    return job->task ? SF_JOB_STATE_RUNNING : SF_JOB_STATE_FINISHED;
}

zframe_t *
sf_jobtab_result (sf_jobtab_t *self, const char *job_id)
{
    assert (self && job_id);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    return job ? job->result : NULL;
}

size_t
sf_jobtab_running (sf_jobtab_t *self)
{
    assert (self);
    return self->running;
}

zlistx_t *
sf_jobtab_running_ids (sf_jobtab_t *self)
{
    assert (self);
    zlistx_t *ids = zlistx_new ();
    zlistx_set_destructor (ids, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (ids, (zlistx_comparator_fn *) strcmp);
    job_t *job = (job_t *) zhashx_first (self->jobs);
    for (; job; job = (job_t *) zhashx_next (self->jobs))
        if (job->task)
            zlistx_add_end (ids, strdup (job->job_id));
    zlistx_sort (ids);
    return ids;
}

sf_jobtab_grant_t
sf_jobtab_grant (sf_jobtab_t *self, const char *job_id, uint32_t attempt, uint64_t rate,
                 uint32_t *known)
{
    assert (self && job_id);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    if (known)
        *known = job ? job->attempt : 0;
    if (!job || !job->task || job->attempt != attempt)
        return SF_JOBTAB_GRANT_DROP;
    if (job->granted)
        return SF_JOBTAB_GRANT_RATE;
    if (!job->asked) {
        job->held = true;
        job->held_rate = rate;
        return SF_JOBTAB_GRANT_HOLD;
    }
    job->granted = true;
    return SF_JOBTAB_GRANT_START;
}

bool
sf_jobtab_upload_wait (sf_jobtab_t *self, const char *job_id, uint64_t *rate)
{
    assert (self && job_id && rate);
    job_t *job = (job_t *) zhashx_lookup (self->jobs, job_id);
    if (!job || !job->task || job->asked)
        return false;
    job->asked = true;
    if (!job->held)
        return false;
    job->held = false;
    job->granted = true;
    *rate = job->held_rate;
    return true;
}

size_t
sf_jobtab_cancel_all (sf_jobtab_t *self)
{
    assert (self);
    size_t count = 0;
    job_t *job = (job_t *) zhashx_first (self->jobs);
    for (; job; job = (job_t *) zhashx_next (self->jobs))
        if (job->task) {
            zstr_send (job->task, "CANCEL");
            count++;
        }
    return count;
}

//  --------------------------------------------------------------------------
//  Self test: a stand-in task that waits for $TERM, like a finished task

static void
s_test_task (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_signal (pipe, 0);
    sf_actor_wait_term (pipe);
}

void
sf_jobtab_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_jobtab: ");
    //  @selftest
    sf_jobtab_t *tab = sf_jobtab_new (2);
    uint32_t known = 99;
    assert (sf_jobtab_fence (tab, "J1", 2, &known) == SF_JOBTAB_START && known == 0);
    zactor_t *task = zactor_new (s_test_task, NULL);
    zsock_t *sock = zactor_sock (task);
    sf_jobtab_start (tab, "J1", 2, "AB-CD", &task);
    assert (task == NULL && sf_jobtab_running (tab) == 1);
    assert (streq (sf_jobtab_job_of (tab, sock), "J1"));
    assert (streq (sf_jobtab_running_on (tab, "ab-cd"), "J1"));
    assert (sf_jobtab_task (tab, "J1", 2) && !sf_jobtab_task (tab, "J1", 1));
    assert (sf_jobtab_attempt (tab, "J1") == 2 && sf_jobtab_attempt (tab, "J0") == 0);
    //  While it runs: repeat ignored, older ignored, newer refused
    assert (sf_jobtab_fence (tab, "J1", 2, &known) == SF_JOBTAB_RUNNING && known == 2);
    assert (sf_jobtab_fence (tab, "J1", 1, NULL) == SF_JOBTAB_STALE);
    assert (sf_jobtab_fence (tab, "J1", 3, NULL) == SF_JOBTAB_BUSY);
    zlistx_t *running = sf_jobtab_running_ids (tab);
    assert (zlistx_size (running) == 1 && streq ((char *) zlistx_first (running), "J1"));
    zlistx_destroy (&running);
    //  Upload grants: fenced by attempt; held until the task asks; then
    //  the first starts the upload, later ones change the rate
    assert (sf_jobtab_grant (tab, "J9", 1, 5, &known) == SF_JOBTAB_GRANT_DROP && known == 0);
    assert (sf_jobtab_grant (tab, "J1", 1, 5, &known) == SF_JOBTAB_GRANT_DROP && known == 2);
    uint64_t rate = 0;
    assert (sf_jobtab_grant (tab, "J1", 2, 5, NULL) == SF_JOBTAB_GRANT_HOLD);
    assert (sf_jobtab_grant (tab, "J1", 2, 7, NULL) == SF_JOBTAB_GRANT_HOLD);
    assert (sf_jobtab_upload_wait (tab, "J1", &rate) && rate == 7);
    assert (!sf_jobtab_upload_wait (tab, "J1", &rate));        //  asked once
    assert (sf_jobtab_grant (tab, "J1", 2, 9, NULL) == SF_JOBTAB_GRANT_RATE);
    assert (!sf_jobtab_upload_wait (tab, "J9", &rate));
    assert (sf_jobtab_cancel_all (tab) == 1);
    //  Status (JobQuery): the last phase and bytes a running task reported
    int phase = 0;
    uint64_t bytes = 9;
    assert (sf_jobtab_status (tab, "J1", 2, &phase, &bytes) == SF_JOB_STATE_RUNNING);
    assert (phase == SF_PHASE_QUEUED && bytes == 0);
    sf_jobtab_progress (tab, "J1", SF_PHASE_CONVERTED, 4096);
    assert (sf_jobtab_status (tab, "J1", 2, &phase, &bytes) == SF_JOB_STATE_RUNNING);
    assert (phase == SF_PHASE_CONVERTED && bytes == 4096);
    assert (sf_jobtab_status (tab, "J1", 1, &phase, &bytes) == SF_JOB_STATE_STALE);
    assert (sf_jobtab_status (tab, "J8", 1, &phase, &bytes) == SF_JOB_STATE_UNKNOWN);
    //  Finished: a repeat gets the same result; a newer attempt may run;
    //  its grants are dropped
    zframe_t *result = zframe_new ("R1", 2);
    sf_jobtab_finish (tab, "J1", &result);
    assert (sf_jobtab_grant (tab, "J1", 2, 9, NULL) == SF_JOBTAB_GRANT_DROP);
    assert (result == NULL && sf_jobtab_running (tab) == 0);
    running = sf_jobtab_running_ids (tab);
    assert (zlistx_size (running) == 0);
    zlistx_destroy (&running);
    assert (!sf_jobtab_running_on (tab, "ab-cd") && !sf_jobtab_job_of (tab, sock));
    assert (sf_jobtab_fence (tab, "J1", 2, NULL) == SF_JOBTAB_RESEND);
    assert (zframe_streq (sf_jobtab_result (tab, "J1"), "R1"));
    assert (sf_jobtab_status (tab, "J1", 2, &phase, &bytes) == SF_JOB_STATE_FINISHED);
    assert (phase == SF_PHASE_DONE);
    assert (sf_jobtab_fence (tab, "J1", 1, NULL) == SF_JOBTAB_STALE);
    assert (sf_jobtab_fence (tab, "J1", 3, NULL) == SF_JOBTAB_START);
    assert (sf_jobtab_result (tab, "J1") == NULL);
    //  Only 'keep' finished jobs are remembered, oldest forgotten first
    const char *ids [] = { "J2", "J3", "J4" };
    for (size_t i = 0; i < 3; i++) {
        task = zactor_new (s_test_task, NULL);
        sf_jobtab_start (tab, ids [i], 1, "u", &task);
        result = zframe_new (ids [i], 2);
        sf_jobtab_finish (tab, ids [i], &result);
    }
    assert (sf_jobtab_fence (tab, "J2", 1, NULL) == SF_JOBTAB_START);
    assert (sf_jobtab_fence (tab, "J4", 1, NULL) == SF_JOBTAB_RESEND);
    //  A result restored from the journal after a restart is answered too
    result = zframe_new ("R6", 2);
    sf_jobtab_restore (tab, "J6", 3, "u", &result);
    assert (result == NULL && sf_jobtab_running (tab) == 0);
    assert (sf_jobtab_fence (tab, "J6", 3, NULL) == SF_JOBTAB_RESEND);
    assert (zframe_streq (sf_jobtab_result (tab, "J6"), "R6"));
    assert (sf_jobtab_fence (tab, "J6", 2, NULL) == SF_JOBTAB_STALE);
    //  A running task is ended with the table
    task = zactor_new (s_test_task, NULL);
    sf_jobtab_start (tab, "J5", 1, "u", &task);
    uint64_t none = 0;
    assert (!sf_jobtab_upload_wait (tab, "J5", &none));         //  asked, nothing held
    assert (sf_jobtab_grant (tab, "J5", 1, 3, NULL) == SF_JOBTAB_GRANT_START);
    assert (sf_jobtab_grant (tab, "J5", 1, 4, NULL) == SF_JOBTAB_GRANT_RATE);
    sf_jobtab_destroy (&tab);
    assert (tab == NULL);
    //  @end
    printf ("OK\n");
}
