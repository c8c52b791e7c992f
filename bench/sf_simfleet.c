/*  =========================================================================
    sf_simfleet - a SIMULATED hypervisor backend for the scale benchmark

    One process hosts N simulated worker nodes (default 1000). Each has its
    own ZeroMQ DEALER connection to the scheduler's worker endpoint and
    speaks sf.v1 through sf_wire exactly as snapfleet-worker does: Hello,
    Inventory, Heartbeats, job events and results. Nothing is paused,
    converted or uploaded: the guests, disks and uploads are a model, and
    their durations are timers. Used only by bench/scale-bench.sh; it is not
    a backend of the real worker.

    Scale: sizes are divided by 1024 (a 1 GiB disk is reported as 1 MiB)
    and so are durations (1 s of the modelled fleet lasts ~1 ms), so rates
    keep their real values (a 500 MiB/s disk is 500 MiB/s here). The
    scheduler's bandwidth limits are therefore written in real units.

    Model of one job (per strategy):
    - file-cold: QUEUED, PAUSED; the pause lasts the convert of the file
      disks (allocated bytes / convert rate); RESUMED, CONVERTED; upload of
      the allocated bytes.
    - rbd (clone mode): QUEUED, PAUSED; the pause lasts one RBD snapshot
      (--rbd-snap); RESUMED, CONVERTED (0 bytes), UPLOADED (0 bytes):
      nothing to store, so no UPLOAD_WAIT and no grant (--rbd-export
      uploads the allocated bytes of the RBD disks instead).
    - mixed: pause = RBD snapshot + convert of the file disks; upload of the
      file disks.
    - offline: no pause; convert, then upload.
    Upload: if the JobAssign said wait_upload_grant, UPLOAD_WAIT (bytes),
    then the upload starts at the first JobGrant; later JobGrants change
    its rate. The node's disk rate is shared by its active uploads
    (water-filling: an upload never goes faster than its grant, the rest
    is split among the others). Scratch: a job holds its upload bytes of
    the node's scratch from the start of its capture to the end of its
    upload; Heartbeat.scratch_free reports what is left.

    What it records, from its own point of view (the truth of what the
    simulated guests and uploads do, not what the scheduler believes):
    - a timeline CSV: a row at every change of the number of paused guests
      or active uploads (t_ms since the first JobAssign, paused, uploads,
      the bytes/s actually moving, the sum of the granted rates);
    - the highest concurrency per limit scope (fleet, node, store, Ceph
      cluster), the highest bandwidth actually used and granted per scope;
    - dispatch and completion throughput, makespan, and the makespan's
      lower bound for the limits given with --limits (the same keys as the
      scheduler's [limits]).

    sf_simfleet --endpoint tcp://127.0.0.1:PORT [options], see --help.
    Runs until SIGINT or SIGTERM, then writes the summary (--summary).
    =========================================================================
*/
#include "sf_core.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#define MIB (1024.0 * 1024.0)

//  --------------------------------------------------------------------------
//  Options

typedef struct {
    const char *endpoint;
    int nodes;
    int instances;                  //  per node
    int stores;
    int clusters;
    uint64_t seed;
    int max_jobs;
    uint64_t scratch_free;          //  per node, scaled bytes
    double convert_bps;             //  per job, real bytes/s
    double disk_min_bps, disk_max_bps;  //  node disk rate range
    double rbd_snap_us;             //  pause of an RBD snapshot, scaled
    double scale;                   //  sizes and durations divided by this
    bool scratch_set, rbd_snap_set;
    bool rbd_export;
    bool dry_run;                   //  only the model's totals and bound
    const char *timeline;
    const char *summary;
    const char *status;
    //  Limits, to compute the lower bound (0 = none)
    uint64_t max_paused, max_paused_per_node, max_snap_ops, max_uploads,
             max_uploads_per_node, max_uploads_per_store;
    double bandwidth, bandwidth_per_node, bandwidth_per_store;
} options_t;

//  --------------------------------------------------------------------------
//  The model

enum { K_FILE_COLD, K_RBD, K_MIXED, K_OFFLINE, K_LAST };
static const char *s_strategy_names [] = { "file-cold", "rbd", "mixed", "offline" };

enum { P_CAPTURE, P_WAIT, P_UPLOAD, P_DONE };

typedef struct {
    uint64_t file_alloc;            //  allocated bytes of the file disks
    uint64_t rbd_alloc;             //  allocated bytes of the RBD disks
    int n_disks;
} sim_sizes_t;

typedef struct _sim_job_t sim_job_t;
typedef struct _sim_node_t sim_node_t;

struct _sim_job_t {
    char id [48];
    char catalog [SF_NAMING_ID_LEN + 1];    //  From the JobAssign: names clones
    char name [64];                 //  The instance's: its RBD images' names
    uint32_t attempt;
    uint32_t index;                 //  in the jobs vector
    uint32_t gen;                   //  timer generation: stale timers are ignored
    sim_node_t *node;
    int kind;
    int phase;
    bool pausing, paused, snap_op;
    bool wait_grant, granted;
    uint64_t grant_bps;             //  0 = unlimited
    uint64_t bytes;                 //  to upload
    uint64_t scratch;               //  held on the node
    int n_images;
    int64_t t_assign, t_pause, t_capture_end, t_upload;  //  us
    int64_t pause_us, convert_us;
    double remaining;               //  upload bytes left
    double rate;                    //  current actual rate, bytes/s
    int64_t last_us;                //  when remaining was last updated
};

struct _sim_node_t {
    int index;
    char name [32];
    char store [32];
    const char *cluster;            //  "" if no Ceph
    int cluster_index;              //  -1 if none
    int store_index;
    double disk_bps;
    zsock_t *sock;
    void *handle;
    bool welcomed;
    bool dirty;                     //  sent something: check for input
    int64_t heartbeat_us;
    uint64_t beat_seq;
    int running;
    uint64_t scratch_used;
    sim_job_t **uploads;            //  active uploads
    int n_uploads, cap_uploads;
    int paused;
    double bw, granted;             //  actual and granted bytes/s now
    //  Totals for the lower bound
    double pause_us_sum, upload_bytes, upload_us_min, job_us_min, job_us_max;
    int64_t jobs_done;
};

typedef struct _sim_timer_t sim_timer_t;
struct _sim_timer_t {
    int64_t at;
    uint32_t index;                 //  job index, or node index
    uint32_t gen;
    int kind;
    sim_timer_t *next;              //  in the spare list, when not armed
};

enum { T_PAUSE_END, T_CAPTURE_END, T_UPLOAD_END, T_HEARTBEAT };

typedef struct {
    int n;
    int uploads;
    double bw, granted;
    //  Lower bound totals
    double pause_us_sum, upload_bytes, upload_us_min;
} sim_scope_t;

typedef struct {
    int paused, paused_node, snap_cluster, uploads, uploads_node, uploads_store;
    int jobs_node;
    double bw, bw_node, bw_store, granted, granted_node, granted_store;
    int64_t scratch_over;           //  scratch used beyond scratch_free
} sim_max_t;

typedef struct {
    options_t opt;
    sim_node_t *nodes;
    sim_scope_t *stores;
    sim_scope_t *clusters;          //  snap ops per Ceph cluster
    char (*fsids) [40];
    zhashx_t *jobs_by_id;           //  id -> sim_job_t, active jobs only
    sim_job_t **jobs;               //  by index, NULL once finished
    size_t n_jobs, cap_jobs;
    sf_heap_t timers;               //  armed sim_timer_t, by at
    sim_timer_t *spare;             //  fired timers, for reuse
    int epoll;
    int64_t t0;                     //  mono us at start
    int64_t now;                    //  us since t0
    //  Fleet state
    int paused, uploads;
    double bw, granted;
    sim_max_t max;
    //  Counters
    int welcomed;
    uint64_t hellos, inventories, assigns, results_ok, results_failed, grants,
             rate_changes, cancels, errors, dropped, events_sent;
    int64_t first_assign, last_assign, last_result;   //  us, -1 if none
    int64_t first_upload_wait;
    double pause_us_sum, upload_bytes, upload_us_min, job_us_max;
    uint64_t bytes_by_kind [K_LAST], jobs_by_kind [K_LAST];
    FILE *timeline;
    int64_t status_at;
    //  Scratch envelope buffers
} sim_t;

//  --------------------------------------------------------------------------
//  Reproducible random numbers (splitmix64)

static uint64_t
s_mix (uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

typedef struct { uint64_t state; } rng_t;

static uint64_t
s_rng_next (rng_t *rng)
{
    rng->state += 0x9e3779b97f4a7c15ull;
    return s_mix (rng->state);
}

static double
s_rng_unit (rng_t *rng)
{
    return (double) (s_rng_next (rng) >> 11) / (double) (1ull << 53);
}

static rng_t
s_rng_for (uint64_t seed, uint64_t a, uint64_t b)
{
    rng_t rng = { s_mix (seed ^ s_mix (a * 0x100000001b3ull + b + 1)) };
    return rng;
}

//  A random-looking uuid; its last group is tag (48 bits) if not zero, so
//  that an instance's uuid names its node and index

static void
s_uuid (rng_t *rng, char *buf, uint64_t tag)
{
    uint64_t hi = s_rng_next (rng), lo = s_rng_next (rng);
    snprintf (buf, 37, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-a%03" PRIx64 "-%012" PRIx64,
              hi >> 32, (hi >> 16) & 0xffff, hi & 0xfff, (lo >> 48) & 0xfff,
              tag? tag: lo & (uint64_t) 0xffffffffffff);
}

//  --------------------------------------------------------------------------
//  Instances: derived from (seed, node, instance), never stored

typedef struct {
    char uuid [37];
    char name [48];
    const char *storage_class;
    bool shutoff;
    int n_disks;
    int types [4];                  //  SF_DISK_FILE or SF_DISK_RBD
    uint64_t virtual_size [4];
    uint64_t allocated [4];
} sim_instance_t;

static void
s_instance (const sim_t *self, const sim_node_t *node, int index, sim_instance_t *inst)
{
    rng_t rng = s_rng_for (self->opt.seed, (uint64_t) node->index, (uint64_t) index);
    s_uuid (&rng, inst->uuid, ((uint64_t) (node->index + 1) << 24) | (uint64_t) index);
    snprintf (inst->name, sizeof (inst->name), "vm-%04d-%03d", node->index + 1, index + 1);
    double r = s_rng_unit (&rng);
    if (node->cluster_index < 0 || r < 0.55)
        inst->storage_class = "file";
    else
    if (r < 0.85)
        inst->storage_class = "rbd";
    else
        inst->storage_class = "mixed";
    inst->shutoff = s_rng_unit (&rng) < 0.05;
    double d = s_rng_unit (&rng);
    inst->n_disks = 1 + (d < 0.3) + (d < 0.1);
    if (streq (inst->storage_class, "mixed") && inst->n_disks < 2)
        inst->n_disks = 2;
    //  Virtual sizes in GiB (reported in MiB: scale), weighted to the small
    static const int sizes [] = { 10, 20, 20, 40, 40, 40, 80, 80, 160, 320 };
    for (int i = 0; i < inst->n_disks; i++) {
        bool rbd = streq (inst->storage_class, "rbd")
                || (streq (inst->storage_class, "mixed") && i == 0);
        inst->types [i] = rbd? SF_DISK_RBD: SF_DISK_FILE;
        uint64_t gib = (uint64_t) sizes [s_rng_next (&rng) % 10];
        if (i > 0)
            gib /= 2;               //  data disks are smaller
        inst->virtual_size [i] = (uint64_t) ((double) (gib << 30) / self->opt.scale);
        double used = 0.05 + 0.35 * s_rng_unit (&rng);
        inst->allocated [i] = (uint64_t) ((double) inst->virtual_size [i] * used);
    }
}

static void
s_instance_sizes (const sim_instance_t *inst, sim_sizes_t *sizes)
{
    memset (sizes, 0, sizeof (*sizes));
    sizes->n_disks = inst->n_disks;
    for (int i = 0; i < inst->n_disks; i++)
        if (inst->types [i] == SF_DISK_RBD)
            sizes->rbd_alloc += inst->allocated [i];
        else
            sizes->file_alloc += inst->allocated [i];
}

//  --------------------------------------------------------------------------
//  Timers: a heap on (at); fired ones are kept for the next

static bool
s_timer_before (const void *a, const void *b)
{
    return ((const sim_timer_t *) a)->at < ((const sim_timer_t *) b)->at;
}

//  Arm a timer, reusing a fired one: no allocation once the number of
//  armed timers stops growing

static void
s_timer_push (sim_t *self, int64_t at, int kind, uint32_t index, uint32_t gen)
{
    sim_timer_t *timer = self->spare;
    if (timer)
        self->spare = timer->next;
    else {
        timer = (sim_timer_t *) malloc (sizeof (sim_timer_t));
        assert (timer);
    }
    *timer = (sim_timer_t) { at, index, gen, kind, NULL };
    sf_heap_insert (&self->timers, timer);
}

//  The next timer, taken out: the caller hands it to s_timer_spare

static sim_timer_t *
s_timer_pop (sim_t *self)
{
    sim_timer_t *timer = (sim_timer_t *) sf_heap_pop (&self->timers);
    assert (timer);
    return timer;
}

static void
s_timer_spare (sim_t *self, sim_timer_t *timer)
{
    timer->next = self->spare;
    self->spare = timer;
}

static int64_t
s_now (sim_t *self)
{
    self->now = sf_time_mono_us () - self->t0;
    return self->now;
}

//  --------------------------------------------------------------------------
//  Timeline and maxima

static void
s_timeline_row (sim_t *self)
{
    if (!self->timeline || self->first_assign < 0)
        return;
    fprintf (self->timeline, "%.3f,%d,%d,%.0f,%.0f\n",
             (double) (self->now - self->first_assign) / 1000.0, self->paused,
             self->uploads, self->bw, self->granted);
}

#define MAXIMIZE(field, value) do { if ((value) > self->max.field) self->max.field = (value); } while (0)

static void
s_track_bandwidth (sim_t *self, sim_node_t *node)
{
    sim_scope_t *store = &self->stores [node->store_index];
    MAXIMIZE (bw, self->bw);
    MAXIMIZE (granted, self->granted);
    MAXIMIZE (bw_node, node->bw);
    MAXIMIZE (granted_node, node->granted);
    MAXIMIZE (bw_store, store->bw);
    MAXIMIZE (granted_store, store->granted);
}

//  --------------------------------------------------------------------------
//  Sending

static void
s_send (sim_t *self, sim_node_t *node, sf_envelope_t *env)
{
    sf_err_t err = SF_ERR_INIT;
    if (sf_wire_send (node->handle, NULL, env, &err)) {
        self->dropped++;
        fprintf (stderr, "sf_simfleet: %s: %s\n", node->name, err.text);
    }
    node->dirty = true;
}

static void
s_send_event (sim_t *self, sim_job_t *job, int phase, uint64_t ms, uint64_t bytes)
{
    sf_job_event_t event = sf_wire_job_event (job->id, job->attempt, phase, ms, bytes);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    s_send (self, job->node, &env);
    self->events_sent++;
}

static void
s_send_hello (sim_t *self, sim_node_t *node)
{
    char *all [] = { "file-cold", "offline", "rbd", "mixed" };
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = node->name;
    hello.software = "sf_simfleet " SF_VERSION " (SIMULATED hypervisor backend)";
    hello.max_jobs = (uint32_t) self->opt.max_jobs;
    hello.strategies = all;
    hello.n_strategies = node->cluster_index >= 0? 4: 2;
    hello.store = node->store;
    hello.ceph_cluster = (char *) node->cluster;
    hello.scratch_free = self->opt.scratch_free > node->scratch_used
                       ? self->opt.scratch_free - node->scratch_used: 0;
    //  The jobs still running here (after a reconnect)
    char **running = (char **) zmalloc ((size_t) (node->running + 1) * sizeof (char *));
    size_t n_running = 0;
    for (sim_job_t *job = (sim_job_t *) zhashx_first (self->jobs_by_id); job;
         job = (sim_job_t *) zhashx_next (self->jobs_by_id))
        if (job->node == node && n_running < (size_t) node->running)
            running [n_running++] = job->id;
    hello.running_jobs = running;
    hello.n_running_jobs = n_running;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HELLO, &hello);
    s_send (self, node, &env);
    free (running);
    self->hellos++;
}

static void
s_send_inventory (sim_t *self, sim_node_t *node)
{
    int count = self->opt.instances;
    sf_instance_t *instances = (sf_instance_t *) zmalloc ((size_t) count * sizeof (sf_instance_t));
    sf_instance_t **list = (sf_instance_t **) zmalloc ((size_t) count * sizeof (sf_instance_t *));
    sim_instance_t *sims = (sim_instance_t *) zmalloc ((size_t) count * sizeof (sim_instance_t));
    sf_disk_t *disks = (sf_disk_t *) zmalloc ((size_t) count * 4 * sizeof (sf_disk_t));
    sf_disk_t **disk_list = (sf_disk_t **) zmalloc ((size_t) count * 4 * sizeof (sf_disk_t *));
    char (*sources) [96] = zmalloc ((size_t) count * 4 * 96);
    static char *targets [] = { "vda", "vdb", "vdc", "vdd" };
    for (int i = 0; i < count; i++) {
        sim_instance_t *sim = &sims [i];
        s_instance (self, node, i, sim);
        sf_instance_t *inst = &instances [i];
        sf__v1__instance__init (inst);
        inst->uuid = sim->uuid;
        inst->name = sim->name;
        inst->state = sim->shutoff? SF_STATE_SHUTOFF: SF_STATE_RUNNING;
        inst->storage_class = (char *) sim->storage_class;
        inst->disks = &disk_list [i * 4];
        inst->n_disks = (size_t) sim->n_disks;
        for (int d = 0; d < sim->n_disks; d++) {
            sf_disk_t *disk = &disks [i * 4 + d];
            sf__v1__disk__init (disk);
            bool rbd = sim->types [d] == SF_DISK_RBD;
            char *source = sources [i * 4 + d];
            if (rbd)
                snprintf (source, 96, "vms/%s-%s", sim->name, targets [d]);
            else
                snprintf (source, 96, "/var/lib/libvirt/images/%s-%s.qcow2", sim->name,
                          targets [d]);
            disk->target = targets [d];
            disk->type = sim->types [d];
            disk->source = source;
            disk->format = rbd? "raw": "qcow2";
            disk->virtual_size = sim->virtual_size [d];
            disk->allocated_size = sim->allocated [d];
            disk->device = "disk";
            disk_list [i * 4 + d] = disk;
        }
        list [i] = inst;
    }
    sf_inventory_t inventory = SF_INVENTORY_INIT;
    inventory.instances = list;
    inventory.n_instances = (size_t) count;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_INVENTORY, &inventory);
    s_send (self, node, &env);
    self->inventories++;
    free (sources);
    free (disk_list);
    free (disks);
    free (sims);
    free (list);
    free (instances);
}

static void
s_send_heartbeat (sim_t *self, sim_node_t *node)
{
    sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
    beat.seq = ++node->beat_seq;
    beat.running_jobs = (uint32_t) node->running;
    beat.scratch_free = self->opt.scratch_free > node->scratch_used
                      ? self->opt.scratch_free - node->scratch_used: 0;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);
    s_send (self, node, &env);
}

//  --------------------------------------------------------------------------
//  Uploads: the node's disk rate shared by its active uploads

static double
s_cap (const sim_job_t *job)
{
    return job->grant_bps? (double) job->grant_bps: INFINITY;
}

static int
s_by_cap (const void *a, const void *b)
{
    double x = s_cap (*(sim_job_t *const *) a), y = s_cap (*(sim_job_t *const *) b);
    return x < y? -1: x > y;
}

//  Bring remaining bytes up to now, share the disk rate again and re-arm
//  every upload's end timer. Call after any change to the node's uploads.

static void
s_node_rebalance (sim_t *self, sim_node_t *node)
{
    sim_scope_t *store = &self->stores [node->store_index];
    double old_bw = node->bw, old_granted = node->granted;
    for (int i = 0; i < node->n_uploads; i++) {
        sim_job_t *job = node->uploads [i];
        job->remaining -= job->rate * (double) (self->now - job->last_us) / 1e6;
        if (job->remaining < 0)
            job->remaining = 0;
        job->last_us = self->now;
    }
    qsort (node->uploads, (size_t) node->n_uploads, sizeof (sim_job_t *), s_by_cap);
    double capacity = node->disk_bps;
    double bw = 0, granted = 0;
    for (int i = 0; i < node->n_uploads; i++) {
        sim_job_t *job = node->uploads [i];
        double share = capacity / (double) (node->n_uploads - i);
        job->rate = s_cap (job) < share? s_cap (job): share;
        capacity -= job->rate;
        bw += job->rate;
        granted += job->grant_bps? (double) job->grant_bps: job->rate;
        job->gen++;
        int64_t left = (int64_t) ceil (job->remaining / job->rate * 1e6);
        s_timer_push (self, self->now + left, T_UPLOAD_END, job->index, job->gen);
    }
    node->bw = bw;
    node->granted = granted;
    store->bw += bw - old_bw;
    store->granted += granted - old_granted;
    self->bw += bw - old_bw;
    self->granted += granted - old_granted;
    //  No drift of the float sums when nothing moves
    if (store->uploads == 0)
        store->bw = store->granted = 0;
    if (self->uploads == 0)
        self->bw = self->granted = 0;
    s_track_bandwidth (self, node);
}

static double
s_min_positive (double a, double b)
{
    if (a <= 0)
        return b;
    if (b <= 0)
        return a;
    return a < b? a: b;
}

//  The fastest an upload of this node can go under the limits

static double
s_best_rate (const sim_t *self, const sim_node_t *node)
{
    double rate = node->disk_bps;
    rate = s_min_positive (rate, self->opt.bandwidth);
    rate = s_min_positive (rate, self->opt.bandwidth_per_node);
    rate = s_min_positive (rate, self->opt.bandwidth_per_store);
    return rate;
}

static void
s_upload_start (sim_t *self, sim_job_t *job)
{
    sim_node_t *node = job->node;
    sim_scope_t *store = &self->stores [node->store_index];
    job->phase = P_UPLOAD;
    job->t_upload = self->now;
    job->remaining = (double) job->bytes;
    job->rate = 0;
    job->last_us = self->now;
    if (node->n_uploads == node->cap_uploads) {
        node->cap_uploads = node->cap_uploads? node->cap_uploads * 2: 4;
        node->uploads = (sim_job_t **) realloc (node->uploads,
                                                (size_t) node->cap_uploads * sizeof (sim_job_t *));
        assert (node->uploads);
    }
    node->uploads [node->n_uploads++] = job;
    self->uploads++;
    store->uploads++;
    MAXIMIZE (uploads, self->uploads);
    MAXIMIZE (uploads_node, node->n_uploads);
    MAXIMIZE (uploads_store, store->uploads);
    s_node_rebalance (self, node);
    s_timeline_row (self);
}

//  --------------------------------------------------------------------------
//  Jobs

//  Add a finished job to the totals of the lower bound

static void
s_account (sim_t *self, const sim_job_t *job)
{
    sim_node_t *node = job->node;
    double best = s_best_rate (self, node);
    double upload_us = job->bytes? (double) job->bytes / best * 1e6: 0;
    double job_us = (double) (job->pause_us + (job->pausing? 0: job->convert_us)) + upload_us;
    node->pause_us_sum += job->pausing? (double) job->pause_us: 0;
    node->upload_bytes += (double) job->bytes;
    node->upload_us_min += upload_us;
    node->job_us_min += job_us;
    if (job_us > node->job_us_max)
        node->job_us_max = job_us;
    node->jobs_done++;
    sim_scope_t *store = &self->stores [node->store_index];
    store->upload_bytes += (double) job->bytes;
    store->upload_us_min += upload_us;
    if (job->snap_op)
        self->clusters [node->cluster_index].pause_us_sum += (double) job->pause_us;
    self->pause_us_sum += job->pausing? (double) job->pause_us: 0;
    self->upload_bytes += (double) job->bytes;
    self->upload_us_min += upload_us;
    if (job_us > self->job_us_max)
        self->job_us_max = job_us;
    self->bytes_by_kind [job->kind] += job->bytes;
    self->jobs_by_kind [job->kind]++;
}


//  The sha256 every simulated stored image reports (of no bytes)
#define SIM_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void
s_job_finish (sim_t *self, sim_job_t *job, bool ok, int code, const char *text)
{
    sim_node_t *node = job->node;
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    sf_image_t images [4], *image_list [4];
    char ids [4][160], paths [4][176];
    static char *targets [] = { "vda", "vdb", "vdc", "vdd" };
    result.job_id = job->id;
    result.attempt = job->attempt;
    result.ok = ok;
    result.strategy = (char *) s_strategy_names [job->kind];
    result.consistency = job->pausing? "paused": "offline";
    result.pause_ms = (uint64_t) ((job->pause_us + 999) / 1000);
    result.convert_ms = (uint64_t) ((job->convert_us + 999) / 1000);
    result.upload_ms = job->t_upload? (uint64_t) ((self->now - job->t_upload + 999) / 1000): 0;
    result.bytes = job->bytes;
    result.resumed = job->pausing;
    if (ok) {
        bool clone = job->kind == K_RBD && job->bytes == 0;
        //  Named as the scheduler checks them (sf_imgcheck): a clone of the
        //  disk's image for this catalogue and job, or a dir store's uuid file
        for (int i = 0; i < job->n_images && i < 4; i++) {
            sf__v1__image__init (&images [i]);
            if (clone) {
                snprintf (ids [i], sizeof (ids [i]), "vms/%s-%s-snapfleet-%s-%s", job->name,
                          targets [i], job->catalog, job->id);
                snprintf (paths [i], sizeof (paths [i]), "rbd:%s", ids [i]);
            }
            else {
                snprintf (ids [i], sizeof (ids [i]), "%08x-0000-4000-8000-%012" PRIx64,
                          (unsigned) i, (uint64_t) strtoull (job->id + 1, NULL, 10));
                snprintf (paths [i], sizeof (paths [i]), "/sim/%s.qcow2", ids [i]);
            }
            images [i].store = clone? "rbd": "dir";
            images [i].id = ids [i];
            images [i].path = paths [i];
            images [i].sha256 = clone? "": SIM_SHA256;
            images [i].size = job->bytes / (uint64_t) job->n_images;
            images [i].disk_target = targets [i];
            images [i].format = clone? "raw": "qcow2";
            image_list [i] = &images [i];
        }
        result.images = image_list;
        result.n_images = (size_t) (job->n_images < 4? job->n_images: 4);
    }
    else {
        error.code = code;
        error.text = (char *) text;
        result.error = &error;
    }
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    s_send (self, node, &env);
    if (ok)
        self->results_ok++;
    else
        self->results_failed++;
    self->last_result = self->now;
    node->running--;
    node->scratch_used -= job->scratch;
    //  Totals for the lower bound, from what the job really did
    if (ok)
        s_account (self, job);
    zhashx_delete (self->jobs_by_id, job->id);
    self->jobs [job->index] = NULL;
    free (job);
}

static void
s_pause_end (sim_t *self, sim_job_t *job)
{
    sim_node_t *node = job->node;
    job->paused = false;
    self->paused--;
    node->paused--;
    if (job->snap_op)
        self->clusters [node->cluster_index].n--;
    s_timeline_row (self);
}

//  The capture is over (guest resumed, images in scratch): store them

static void
s_capture_done (sim_t *self, sim_job_t *job)
{
    job->t_capture_end = self->now;
    if (job->pausing) {
        s_pause_end (self, job);
        s_send_event (self, job, SF_PHASE_RESUMED, (uint64_t) (job->pause_us / 1000), 0);
    }
    s_send_event (self, job, SF_PHASE_CONVERTED, (uint64_t) (job->convert_us / 1000),
                  job->bytes);
    if (job->bytes == 0) {
        s_send_event (self, job, SF_PHASE_UPLOADED, 0, 0);
        s_job_finish (self, job, true, 0, NULL);
        return;
    }
    if (job->wait_grant) {
        s_send_event (self, job, SF_PHASE_UPLOAD_WAIT, 0, job->bytes);
        if (self->first_upload_wait < 0)
            self->first_upload_wait = self->now;
        if (!job->granted) {
            job->phase = P_WAIT;
            return;
        }
    }
    s_upload_start (self, job);
}

static void
s_upload_end (sim_t *self, sim_job_t *job)
{
    sim_node_t *node = job->node;
    sim_scope_t *store = &self->stores [node->store_index];
    for (int i = 0; i < node->n_uploads; i++)
        if (node->uploads [i] == job) {
            node->uploads [i] = node->uploads [--node->n_uploads];
            break;
        }
    self->uploads--;
    store->uploads--;
    job->rate = 0;
    s_node_rebalance (self, node);
    s_timeline_row (self);
    s_send_event (self, job, SF_PHASE_UPLOADED,
                  (uint64_t) ((self->now - job->t_upload) / 1000), job->bytes);
    job->phase = P_DONE;
    s_job_finish (self, job, true, 0, NULL);
}

//  What a job of this kind does with this instance: pause, convert, bytes

static void
s_job_model (const sim_t *self, sim_node_t *node, const sim_instance_t *inst, int kind,
             sim_job_t *job)
{
    sim_sizes_t sizes;
    s_instance_sizes (inst, &sizes);
    job->node = node;
    job->kind = kind;
    job->n_images = sizes.n_disks;
    double convert_bps = self->opt.convert_bps;
    uint64_t file = sizes.file_alloc, rbd = sizes.rbd_alloc;
    switch (kind) {
        case K_FILE_COLD:
            job->pausing = true;
            job->bytes = file + rbd;
            job->convert_us = (int64_t) ((double) job->bytes / convert_bps * 1e6);
            job->pause_us = job->convert_us;
            break;
        case K_RBD:
            job->pausing = job->snap_op = true;
            job->pause_us = (int64_t) self->opt.rbd_snap_us;
            job->bytes = self->opt.rbd_export? rbd: 0;
            job->n_images = 1;
            break;
        case K_MIXED:
            job->pausing = job->snap_op = true;
            job->bytes = file + (self->opt.rbd_export? rbd: 0);
            job->convert_us = (int64_t) ((double) file / convert_bps * 1e6);
            job->pause_us = (int64_t) self->opt.rbd_snap_us + job->convert_us;
            break;
        default:
            job->bytes = file + rbd;
            job->convert_us = (int64_t) ((double) job->bytes / convert_bps * 1e6);
            break;
    }
    job->scratch = job->bytes;
}

static int
s_strategy_kind (const char *name)
{
    for (int k = 0; k < K_LAST; k++)
        if (streq (name, s_strategy_names [k]))
            return k;
    return -1;
}

static void
s_refuse (sim_t *self, sim_node_t *node, const sf_job_assign_t *assign, int code,
          const char *text)
{
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    result.job_id = assign->job_id;
    result.attempt = assign->attempt;
    result.ok = false;
    error.code = code;
    error.text = (char *) text;
    result.error = &error;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    s_send (self, node, &env);
    self->results_failed++;
}

//  The instance from its uuid, whose last group is (node + 1, index)

static int
s_find_instance (sim_t *self, sim_node_t *node, const char *uuid, sim_instance_t *inst)
{
    size_t length = strlen (uuid);
    if (length != 36)
        return -1;
    uint64_t tag = strtoull (uuid + 24, NULL, 16);
    int index = (int) (tag & 0xffffff);
    if ((int) (tag >> 24) != node->index + 1 || index >= self->opt.instances)
        return -1;
    s_instance (self, node, index, inst);
    return streq (inst->uuid, uuid)? index: -1;
}

static void
s_on_assign (sim_t *self, sim_node_t *node, const sf_job_assign_t *assign)
{
    self->assigns++;
    if (self->first_assign < 0)
        self->first_assign = self->now;
    self->last_assign = self->now;
    sim_job_t *old = (sim_job_t *) zhashx_lookup (self->jobs_by_id, assign->job_id);
    if (old) {
        if (assign->attempt > old->attempt)
            fprintf (stderr, "sf_simfleet: %s: new attempt %u of running job %s ignored\n",
                     node->name, assign->attempt, assign->job_id);
        return;
    }
    int kind = s_strategy_kind (assign->strategy);
    if (kind < 0 || (node->cluster_index < 0 && (kind == K_RBD || kind == K_MIXED))) {
        s_refuse (self, node, assign, SF_ENOTSUP, "strategy not offered by this simulated node");
        return;
    }
    sim_instance_t inst;
    if (s_find_instance (self, node, assign->instance_uuid, &inst) < 0) {
        s_refuse (self, node, assign, SF_ENOENT, "no such instance on this simulated node");
        return;
    }
    sim_job_t *job = (sim_job_t *) zmalloc (sizeof (sim_job_t));
    snprintf (job->id, sizeof (job->id), "%s", assign->job_id);
    snprintf (job->catalog, sizeof (job->catalog), "%s", assign->catalog_id);
    snprintf (job->name, sizeof (job->name), "%s", inst.name);
    job->attempt = assign->attempt;
    job->wait_grant = assign->wait_upload_grant;
    job->t_assign = self->now;
    s_job_model (self, node, &inst, kind, job);
    if (self->n_jobs == self->cap_jobs) {
        self->cap_jobs = self->cap_jobs? self->cap_jobs * 2: 4096;
        self->jobs = (sim_job_t **) realloc (self->jobs, self->cap_jobs * sizeof (sim_job_t *));
        assert (self->jobs);
    }
    job->index = (uint32_t) self->n_jobs;
    self->jobs [self->n_jobs++] = job;
    zhashx_insert (self->jobs_by_id, job->id, job);
    node->running++;
    MAXIMIZE (jobs_node, node->running);
    node->scratch_used += job->scratch;
    if ((int64_t) (node->scratch_used - self->opt.scratch_free) > self->max.scratch_over
    &&  node->scratch_used > self->opt.scratch_free)
        self->max.scratch_over = (int64_t) (node->scratch_used - self->opt.scratch_free);
    job->phase = P_CAPTURE;
    s_send_event (self, job, SF_PHASE_QUEUED, 0, 0);
    if (job->pausing) {
        job->paused = true;
        job->t_pause = self->now;
        self->paused++;
        node->paused++;
        MAXIMIZE (paused, self->paused);
        MAXIMIZE (paused_node, node->paused);
        if (job->snap_op) {
            sim_scope_t *cluster = &self->clusters [node->cluster_index];
            cluster->n++;
            MAXIMIZE (snap_cluster, cluster->n);
        }
        s_timeline_row (self);
        s_send_event (self, job, SF_PHASE_PAUSED, 0, 0);
        s_timer_push (self, self->now + job->pause_us, T_PAUSE_END, job->index, job->gen);
    }
    else
        s_timer_push (self, self->now + job->convert_us, T_CAPTURE_END, job->index, job->gen);
}

//  Like the worker: every grant is answered (the rate applies at once here,
//  and nothing else is sent before the answer)
static void
s_send_applied (sim_t *self, sim_node_t *node, const sf_job_grant_t *grant)
{
    sf_rate_applied_t applied = sf_wire_rate_applied (grant);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_RATE_APPLIED, &applied);
    s_send (self, node, &env);
}

static void
s_on_grant (sim_t *self, sim_node_t *node, const sf_job_grant_t *grant)
{
    self->grants++;
    s_send_applied (self, node, grant);
    sim_job_t *job = (sim_job_t *) zhashx_lookup (self->jobs_by_id, grant->job_id);
    if (!job || job->node != node || job->attempt != grant->attempt)
        return;
    bool first = !job->granted;
    job->granted = true;
    job->grant_bps = grant->rate_bps;
    if (!first)
        self->rate_changes++;
    if (job->phase == P_WAIT)
        s_upload_start (self, job);
    else
    if (job->phase == P_UPLOAD) {
        s_node_rebalance (self, node);
        s_timeline_row (self);
    }
}

static void
s_on_cancel (sim_t *self, sim_node_t *node, const sf_job_cancel_t *cancel)
{
    self->cancels++;
    sim_job_t *job = (sim_job_t *) zhashx_lookup (self->jobs_by_id, cancel->job_id);
    if (!job || job->node != node || job->attempt != cancel->attempt)
        return;
    if (job->paused)
        s_pause_end (self, job);
    if (job->phase == P_UPLOAD) {
        for (int i = 0; i < node->n_uploads; i++)
            if (node->uploads [i] == job) {
                node->uploads [i] = node->uploads [--node->n_uploads];
                break;
            }
        self->uploads--;
        self->stores [node->store_index].uploads--;
        s_node_rebalance (self, node);
        s_timeline_row (self);
    }
    job->gen++;
    s_job_finish (self, job, false, SF_ECANCELED, "job cancelled");
}

static void
s_on_message (sim_t *self, sim_node_t *node, sf_envelope_t *env)
{
    switch (env->body_case) {
        case SF_BODY_WELCOME: {
            int64_t period = env->welcome->heartbeat_ms? env->welcome->heartbeat_ms: 1000;
            if (!node->welcomed) {
                node->welcomed = true;
                self->welcomed++;
                s_send_inventory (self, node);
                //  Spread the first beats over one period
                s_timer_push (self, self->now + (int64_t) (s_mix ((uint64_t) node->index)
                              % (uint64_t) (period * 1000)), T_HEARTBEAT,
                              (uint32_t) node->index, 0);
            }
            node->heartbeat_us = period * 1000;
            break;
        }
        case SF_BODY_JOB_ASSIGN:
            s_on_assign (self, node, env->job_assign);
            break;
        case SF_BODY_JOB_GRANT:
            s_on_grant (self, node, env->job_grant);
            break;
        case SF_BODY_JOB_CANCEL:
            s_on_cancel (self, node, env->job_cancel);
            break;
        case SF_BODY_GC_LIST: {         //  the reconciler: a simulated node holds nothing
            sf_gc_holdings_t holdings = SF_GC_HOLDINGS_INIT;
            holdings.request_id = env->gc_list->request_id;
            holdings.store_complete = holdings.rbd_complete = true;
            sf_envelope_t answer = sf_wire_envelope (SF_BODY_GC_HOLDINGS, &holdings);
            s_send (self, node, &answer);
            break;
        }
        case SF_BODY_GC_REMOVE: {
            sf_gc_removed_t removed = SF_GC_REMOVED_INIT;
            removed.request_id = env->gc_remove->request_id;
            sf_envelope_t answer = sf_wire_envelope (SF_BODY_GC_REMOVED, &removed);
            s_send (self, node, &answer);
            break;
        }
        case SF_BODY_ERROR:
            self->errors++;
            if (env->error->code == SF_ENODE) {
                //  The scheduler does not know us (restarted): hello again
                s_send_hello (self, node);
                if (node->welcomed)
                    s_send_inventory (self, node);
            }
            else
                fprintf (stderr, "sf_simfleet: %s: scheduler error %s: %s\n", node->name,
                         sf_err_name (env->error->code), env->error->text? env->error->text: "");
            break;
        default:
            fprintf (stderr, "sf_simfleet: %s: unexpected '%s' ignored\n", node->name,
                     sf_wire_body_name (env->body_case));
    }
}

//  Read everything the node's socket has

static void
s_drain (sim_t *self, sim_node_t *node)
{
    node->dirty = false;
    while (true) {
        int events = 0;
        size_t size = sizeof (events);
        if (zmq_getsockopt (node->handle, ZMQ_EVENTS, &events, &size) || !(events & ZMQ_POLLIN))
            return;
        sf_err_t err = SF_ERR_INIT;
        sf_envelope_t *env = sf_wire_recv (node->handle, NULL, &err);
        s_now (self);
        if (!env) {
            fprintf (stderr, "sf_simfleet: %s: %s\n", node->name, err.text);
            continue;
        }
        s_on_message (self, node, env);
        sf_wire_free (&env);
    }
}

static void
s_on_timer (sim_t *self, const sim_timer_t *timer)
{
    if (timer->kind == T_HEARTBEAT) {
        sim_node_t *node = &self->nodes [timer->index];
        s_send_heartbeat (self, node);
        s_timer_push (self, timer->at + node->heartbeat_us, T_HEARTBEAT, timer->index, 0);
        return;
    }
    sim_job_t *job = timer->index < self->n_jobs? self->jobs [timer->index]: NULL;
    if (!job || job->gen != timer->gen)
        return;                     //  Finished, or re-armed since
    if (timer->kind == T_PAUSE_END || timer->kind == T_CAPTURE_END)
        s_capture_done (self, job);
    else
    if (timer->kind == T_UPLOAD_END && job->phase == P_UPLOAD)
        s_upload_end (self, job);
}

//  --------------------------------------------------------------------------
//  Reports

static void
s_write_status (sim_t *self)
{
    if (!self->opt.status)
        return;
    char tmp [1024];
    snprintf (tmp, sizeof (tmp), "%s.tmp", self->opt.status);
    FILE *file = fopen (tmp, "w");
    if (!file)
        return;
    fprintf (file, "{\"nodes\":%d,\"welcomed\":%d,\"inventories\":%" PRIu64 ",\"assigns\":%"
             PRIu64 ",\"results_ok\":%" PRIu64 ",\"results_failed\":%" PRIu64
             ",\"running\":%zu,\"paused\":%d,\"uploads\":%d,\"t_ms\":%" PRId64 "}\n",
             self->opt.nodes, self->welcomed, self->inventories, self->assigns,
             self->results_ok, self->results_failed, zhashx_size (self->jobs_by_id),
             self->paused, self->uploads, self->now / 1000);
    fclose (file);
    rename (tmp, self->opt.status);
}

static double
s_ratio (double a, double b)
{
    return b > 0? a / b: 0;
}

//  One lower-bound candidate: keep the largest, with its name

static void
s_bound (double *best, char *which, size_t size, double value_us, const char *name)
{
    if (value_us > *best) {
        *best = value_us;
        snprintf (which, size, "%s", name);
    }
}

static void
s_write_summary (sim_t *self)
{
    const options_t *o = &self->opt;
    //  The lower bound of the makespan: no schedule under these limits can
    //  be shorter than any of these (us)
    double bound = self->job_us_max;
    char which [64] = "longest job";
    if (o->bandwidth > 0)
        s_bound (&bound, which, sizeof (which), self->upload_bytes / o->bandwidth * 1e6,
                 "fleet bandwidth");
    if (o->max_uploads)
        s_bound (&bound, which, sizeof (which), self->upload_us_min / (double) o->max_uploads,
                 "fleet upload slots");
    if (o->max_paused)
        s_bound (&bound, which, sizeof (which), self->pause_us_sum / (double) o->max_paused,
                 "fleet pause slots");
    for (int c = 0; c < o->clusters; c++)
        if (o->max_snap_ops)
            s_bound (&bound, which, sizeof (which),
                     self->clusters [c].pause_us_sum / (double) o->max_snap_ops,
                     "cluster snap ops");
    for (int s = 0; s < o->stores; s++) {
        sim_scope_t *store = &self->stores [s];
        if (o->bandwidth_per_store > 0)
            s_bound (&bound, which, sizeof (which),
                     store->upload_bytes / o->bandwidth_per_store * 1e6, "store bandwidth");
        if (o->max_uploads_per_store)
            s_bound (&bound, which, sizeof (which),
                     store->upload_us_min / (double) o->max_uploads_per_store,
                     "store upload slots");
    }
    for (int n = 0; n < o->nodes; n++) {
        sim_node_t *node = &self->nodes [n];
        double rate = s_min_positive (node->disk_bps, o->bandwidth_per_node);
        s_bound (&bound, which, sizeof (which), node->upload_bytes / rate * 1e6,
                 "node bandwidth/disk");
        if (o->max_uploads_per_node)
            s_bound (&bound, which, sizeof (which),
                     node->upload_us_min / (double) o->max_uploads_per_node, "node upload slots");
        if (o->max_paused_per_node)
            s_bound (&bound, which, sizeof (which),
                     node->pause_us_sum / (double) o->max_paused_per_node, "node pause slots");
        if (o->max_jobs)
            s_bound (&bound, which, sizeof (which), node->job_us_min / (double) o->max_jobs,
                     "node max_jobs");
    }
    double makespan = self->first_assign >= 0 && self->last_result >= 0
                    ? (double) (self->last_result - self->first_assign): 0;
    double dispatch_s = (double) (self->last_assign - self->first_assign) / 1e6;
    FILE *file = o->summary? fopen (o->summary, "w"): stdout;
    if (!file) {
        fprintf (stderr, "sf_simfleet: cannot write '%s': %s\n", o->summary, strerror (errno));
        file = stdout;
    }
    fprintf (file, "{\n  \"backend\": \"SIMULATED (sf_simfleet)\",\n");
    fprintf (file, "  \"nodes\": %d, \"instances_per_node\": %d, \"welcomed\": %d,\n",
             o->nodes, o->instances, self->welcomed);
    fprintf (file, "  \"assigns\": %" PRIu64 ", \"results_ok\": %" PRIu64
             ", \"results_failed\": %" PRIu64 ", \"unfinished\": %zu,\n",
             self->assigns, self->results_ok, self->results_failed,
             zhashx_size (self->jobs_by_id));
    fprintf (file, "  \"grants\": %" PRIu64 ", \"rate_changes\": %" PRIu64
             ", \"cancels\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"hellos\": %" PRIu64
             ", \"events_sent\": %" PRIu64 ", \"send_failures\": %" PRIu64 ",\n",
             self->grants, self->rate_changes, self->cancels, self->errors, self->hellos,
             self->events_sent, self->dropped);
    fprintf (file, "  \"first_assign_ms\": %.3f, \"last_assign_ms\": %.3f,"
             " \"last_result_ms\": %.3f,\n",
             (double) self->first_assign / 1000.0, (double) self->last_assign / 1000.0,
             (double) self->last_result / 1000.0);
    fprintf (file, "  \"dispatch_jobs_per_s\": %.0f, \"completion_jobs_per_s\": %.0f,\n",
             dispatch_s > 0? (double) self->assigns / dispatch_s: 0,
             makespan > 0? (double) (self->results_ok + self->results_failed) / makespan * 1e6: 0);
    fprintf (file, "  \"makespan_ms\": %.1f, \"lower_bound_ms\": %.1f, \"bound_by\": \"%s\","
             " \"makespan_over_bound\": %.4f,\n", makespan / 1000.0, bound / 1000.0, which,
             s_ratio (makespan, bound));
    fprintf (file, "  \"totals\": {\"upload_bytes\": %.0f, \"pause_ms\": %.1f,"
             " \"upload_ms_at_best_rate\": %.1f, \"longest_job_ms\": %.1f,"
             " \"jobs_file_cold\": %" PRIu64 ", \"jobs_rbd\": %" PRIu64
             ", \"jobs_mixed\": %" PRIu64 ", \"jobs_offline\": %" PRIu64 "},\n",
             self->upload_bytes, self->pause_us_sum / 1000.0, self->upload_us_min / 1000.0,
             self->job_us_max / 1000.0, self->jobs_by_kind [K_FILE_COLD],
             self->jobs_by_kind [K_RBD], self->jobs_by_kind [K_MIXED],
             self->jobs_by_kind [K_OFFLINE]);
    const sim_max_t *m = &self->max;
    fprintf (file, "  \"max\": {\"paused\": %d, \"paused_per_node\": %d,"
             " \"snap_ops_per_cluster\": %d, \"uploads\": %d, \"uploads_per_node\": %d,"
             " \"uploads_per_store\": %d, \"jobs_per_node\": %d,\n"
             "          \"bandwidth\": %.0f, \"bandwidth_per_node\": %.0f,"
             " \"bandwidth_per_store\": %.0f,\n"
             "          \"granted\": %.0f, \"granted_per_node\": %.0f,"
             " \"granted_per_store\": %.0f, \"scratch_overcommit\": %" PRId64 "}\n}\n",
             m->paused, m->paused_node, m->snap_cluster, m->uploads, m->uploads_node,
             m->uploads_store, m->jobs_node, m->bw, m->bw_node, m->bw_store, m->granted,
             m->granted_node, m->granted_store, m->scratch_over);
    if (file != stdout)
        fclose (file);
}

//  --------------------------------------------------------------------------
//  Setup

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: sf_simfleet --endpoint tcp://HOST:PORT [options]\n"
        "\n"
        "A SIMULATED hypervisor backend for bench/scale-bench.sh: N simulated worker\n"
        "nodes in one process, each with its own ZeroMQ connection to the scheduler.\n"
        "Sizes and durations are scaled by 1/1024 (a 1 GiB disk is reported as\n"
        "1 MiB, 1 s lasts ~1 ms); rates keep their real values.\n"
        "\n"
        "  -e, --endpoint EP        the scheduler's worker endpoint (required)\n"
        "  -n, --nodes N            simulated nodes (1000)\n"
        "  -i, --instances M        instances per node (100)\n"
        "      --stores K           image stores, shared round-robin (10)\n"
        "      --clusters C         Ceph clusters (4); every 5th node has no Ceph\n"
        "      --seed S             seed of the sizes and the mix (1)\n"
        "      --max-jobs J         Hello.max_jobs (4)\n"
        "      --scratch SIZE       scratch per node, scaled (2G = 2 TiB modelled)\n"
        "      --convert-rate SIZE  per-job convert rate per second (800M)\n"
        "      --disk-rate MIN:MAX  node disk rate per second, drawn per node (400M:1G)\n"
        "      --rbd-snap MS        pause of an RBD snapshot, scaled ms (1)\n"
        "      --rbd-export         rbd jobs upload their disks (default: clone, no upload)\n"
        "      --limits K=V,...     the scheduler's [limits] (for the lower bound)\n"
        "      --timeline FILE      CSV: t_ms,paused,uploads,bw_bps,granted_bps\n"
        "      --summary FILE       JSON summary at exit (default: stdout)\n"
        "      --status FILE        JSON progress, rewritten twice a second\n"
        "      --dry-run            connect nothing: the totals and the lower bound of\n"
        "                           snapshotting every instance once\n");
}

static int
s_parse_rate (const char *text, double *rate)
{
    uint64_t bytes;
    if (sf_parse_size (text, &bytes))
        return -1;
    *rate = (double) bytes;
    return 0;
}

static int
s_parse_limits (options_t *o, const char *text)
{
    char *copy = strdup (text), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r (copy, ",", &save); item && !rc; item = strtok_r (NULL, ",", &save)) {
        char *eq = strchr (item, '=');
        if (!eq) {
            rc = -1;
            break;
        }
        *eq = 0;
        const char *key = item, *value = eq + 1;
        struct { const char *key; uint64_t *count; double *rate; } keys [] = {
            { "max_paused", &o->max_paused, NULL },
            { "max_paused_per_node", &o->max_paused_per_node, NULL },
            { "max_snap_ops", &o->max_snap_ops, NULL },
            { "max_uploads", &o->max_uploads, NULL },
            { "max_uploads_per_node", &o->max_uploads_per_node, NULL },
            { "max_uploads_per_store", &o->max_uploads_per_store, NULL },
            { "bandwidth", NULL, &o->bandwidth },
            { "bandwidth_per_node", NULL, &o->bandwidth_per_node },
            { "bandwidth_per_store", NULL, &o->bandwidth_per_store },
        };
        rc = -1;
        for (size_t k = 0; k < sizeof (keys) / sizeof (keys [0]); k++)
            if (streq (key, keys [k].key)) {
                rc = keys [k].count? sf_parse_size (value, keys [k].count)
                                   : s_parse_rate (value, keys [k].rate);
                break;
            }
        if (rc)
            fprintf (stderr, "sf_simfleet: bad limit '%s=%s'\n", key, value);
    }
    free (copy);
    return rc;
}

static int
s_parse_args (options_t *o, int argc, char *argv [])
{
    static const struct option options [] = {
        { "endpoint", required_argument, NULL, 'e' },
        { "nodes", required_argument, NULL, 'n' },
        { "instances", required_argument, NULL, 'i' },
        { "stores", required_argument, NULL, 1 },
        { "clusters", required_argument, NULL, 2 },
        { "seed", required_argument, NULL, 3 },
        { "max-jobs", required_argument, NULL, 4 },
        { "scratch", required_argument, NULL, 5 },
        { "convert-rate", required_argument, NULL, 6 },
        { "disk-rate", required_argument, NULL, 7 },
        { "rbd-snap", required_argument, NULL, 8 },
        { "rbd-export", no_argument, NULL, 9 },
        { "limits", required_argument, NULL, 10 },
        { "timeline", required_argument, NULL, 11 },
        { "summary", required_argument, NULL, 12 },
        { "status", required_argument, NULL, 13 },
        { "dry-run", no_argument, NULL, 14 },
        { "scale", required_argument, NULL, 15 },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    char *end;
    while ((opt = getopt_long (argc, argv, "e:n:i:h", options, NULL)) != -1) {
        switch (opt) {
            case 'e': o->endpoint = optarg; break;
            case 'n': o->nodes = (int) strtol (optarg, &end, 10); break;
            case 'i': o->instances = (int) strtol (optarg, &end, 10); break;
            case 1: o->stores = atoi (optarg); break;
            case 2: o->clusters = atoi (optarg); break;
            case 3: o->seed = strtoull (optarg, &end, 10); break;
            case 4: o->max_jobs = atoi (optarg); break;
            case 5:
                if (sf_parse_size (optarg, &o->scratch_free))
                    return 2;
                o->scratch_set = true;
                break;
            case 6:
                if (s_parse_rate (optarg, &o->convert_bps))
                    return 2;
                break;
            case 7: {
                char *colon = strchr (optarg, ':');
                if (!colon)
                    return 2;
                *colon = 0;
                if (s_parse_rate (optarg, &o->disk_min_bps)
                ||  s_parse_rate (colon + 1, &o->disk_max_bps))
                    return 2;
                break;
            }
            case 8: o->rbd_snap_us = atof (optarg) * 1000.0; o->rbd_snap_set = true; break;
            case 9: o->rbd_export = true; break;
            case 10:
                if (s_parse_limits (o, optarg))
                    return 2;
                break;
            case 11: o->timeline = optarg; break;
            case 12: o->summary = optarg; break;
            case 13: o->status = optarg; break;
            case 14: o->dry_run = true; break;
            case 15:
                o->scale = strtod (optarg, &end);
                if (*end || !(o->scale >= 1 && o->scale <= 65536))
                    return 2;
                break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if ((!o->endpoint && !o->dry_run) || o->nodes < 1 || o->instances < 1 || o->stores < 1
    ||  o->clusters < 1 || o->max_jobs < 1 || o->convert_bps <= 0 || o->disk_min_bps <= 0
    ||  o->disk_max_bps < o->disk_min_bps || optind < argc) {
        fprintf (stderr, "sf_simfleet: bad or missing arguments\n");
        s_usage (stderr);
        return 2;
    }
    return -1;
}

static void
s_raise_fd_limit (int nodes)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit))
        return;
    rlim_t want = (rlim_t) nodes * 4 + 256;
    if (limit.rlim_cur < want) {
        limit.rlim_cur = limit.rlim_max < want? limit.rlim_max: want;
        setrlimit (RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur < want)
        fprintf (stderr, "sf_simfleet: only %lu file descriptors for %d nodes (want %lu):"
                 " raise the hard limit (ulimit -Hn)\n", (unsigned long) limit.rlim_cur,
                 nodes, (unsigned long) want);
}

static int
s_setup (sim_t *self)
{
    options_t *o = &self->opt;
    s_raise_fd_limit (o->nodes);
    zsys_set_max_sockets ((size_t) o->nodes + 64);
    zsys_set_io_threads (1);
    zsys_set_sndhwm (0);
    zsys_set_rcvhwm (0);
    zsys_set_linger (0);
    self->jobs_by_id = zhashx_new ();
    self->first_assign = self->last_assign = self->last_result = self->first_upload_wait = -1;
    self->t0 = sf_time_mono_us ();
    self->epoll = epoll_create1 (EPOLL_CLOEXEC);
    assert (self->epoll >= 0);
    self->fsids = zmalloc ((size_t) o->clusters * sizeof (*self->fsids));
    for (int c = 0; c < o->clusters; c++) {
        rng_t rng = s_rng_for (o->seed, 0xCEF, (uint64_t) c);
        s_uuid (&rng, self->fsids [c], 0);
    }
    self->stores = (sim_scope_t *) zmalloc ((size_t) o->stores * sizeof (sim_scope_t));
    self->clusters = (sim_scope_t *) zmalloc ((size_t) o->clusters * sizeof (sim_scope_t));
    self->nodes = (sim_node_t *) zmalloc ((size_t) o->nodes * sizeof (sim_node_t));
    for (int i = 0; i < o->nodes; i++) {
        sim_node_t *node = &self->nodes [i];
        node->index = i;
        snprintf (node->name, sizeof (node->name), "sim-%04d", i + 1);
        //  Stores by blocks of nodes, so each gets its share of nodes without Ceph
        node->store_index = (int) ((int64_t) i * o->stores / o->nodes);
        snprintf (node->store, sizeof (node->store), "sim-store-%02d", node->store_index + 1);
        node->cluster_index = i % 5 == 4? -1: (i / 5 * 4 + i % 5) % o->clusters;
        node->cluster = node->cluster_index < 0? "": self->fsids [node->cluster_index];
        rng_t rng = s_rng_for (o->seed, 0xD15C, (uint64_t) i);
        node->disk_bps = o->disk_min_bps + (o->disk_max_bps - o->disk_min_bps) * s_rng_unit (&rng);
        node->heartbeat_us = 1000000;
        if (o->dry_run)
            continue;
        node->sock = zsock_new (ZMQ_DEALER);
        if (!node->sock) {
            fprintf (stderr, "sf_simfleet: cannot create socket %d: %s\n", i,
                     zmq_strerror (zmq_errno ()));
            return -1;
        }
        zsock_set_sndhwm (node->sock, 0);
        zsock_set_rcvhwm (node->sock, 0);
        zsock_set_linger (node->sock, 0);
        zsock_set_maxmsgsize (node->sock, SF_WIRE_MAX_BYTES + 1024);
        if (zsock_connect (node->sock, "%s", o->endpoint)) {
            fprintf (stderr, "sf_simfleet: cannot connect to '%s'\n", o->endpoint);
            return -1;
        }
        node->handle = zsock_resolve (node->sock);
        int fd = zsock_fd (node->sock);
        struct epoll_event event = { .events = EPOLLIN, .data.u32 = (uint32_t) i };
        if (epoll_ctl (self->epoll, EPOLL_CTL_ADD, fd, &event)) {
            fprintf (stderr, "sf_simfleet: epoll_ctl: %s\n", strerror (errno));
            return -1;
        }
        s_send_hello (self, node);
    }
    if (o->timeline) {
        self->timeline = fopen (o->timeline, "w");
        if (!self->timeline) {
            fprintf (stderr, "sf_simfleet: cannot write '%s': %s\n", o->timeline, strerror (errno));
            return -1;
        }
        fprintf (self->timeline, "t_ms,paused,uploads,bw_bps,granted_bps\n");
    }
    return 0;
}

static void
s_teardown (sim_t *self)
{
    for (size_t i = 0; i < self->n_jobs; i++)
        free (self->jobs [i]);
    free (self->jobs);
    for (int i = 0; self->nodes && i < self->opt.nodes; i++) {
        zsock_destroy (&self->nodes [i].sock);
        free (self->nodes [i].uploads);
    }
    free (self->nodes);
    free (self->stores);
    free (self->clusters);
    free (self->fsids);
    sim_timer_t *timer;
    while ((timer = (sim_timer_t *) sf_heap_pop (&self->timers)))
        free (timer);
    sf_heap_release (&self->timers);
    while ((timer = self->spare)) {
        self->spare = timer->next;
        free (timer);
    }
    zhashx_destroy (&self->jobs_by_id);
    if (self->timeline)
        fclose (self->timeline);
    if (self->epoll >= 0)
        close (self->epoll);
}

//  Every instance snapshotted once with its default strategy, each job
//  alone: the totals and the lower bound, without a scheduler

static void
s_dry_run (sim_t *self)
{
    for (int n = 0; n < self->opt.nodes; n++) {
        sim_node_t *node = &self->nodes [n];
        for (int i = 0; i < self->opt.instances; i++) {
            sim_instance_t inst;
            s_instance (self, node, i, &inst);
            int kind = inst.shutoff? K_OFFLINE
                     : streq (inst.storage_class, "rbd")? K_RBD
                     : streq (inst.storage_class, "mixed")? K_MIXED: K_FILE_COLD;
            sim_job_t job;
            memset (&job, 0, sizeof (job));
            s_job_model (self, node, &inst, kind, &job);
            s_account (self, &job);
        }
    }
    s_write_summary (self);
}

//  --------------------------------------------------------------------------
//  The loop: epoll on the sockets' ZMQ_FD, timers from the heap

static void
s_run (sim_t *self)
{
    struct epoll_event events [256];
    while (!zsys_interrupted) {
        s_now (self);
        int timeout = 100;
        sim_timer_t *first = (sim_timer_t *) sf_heap_top (&self->timers);
        if (first) {
            int64_t wait = (first->at - self->now + 999) / 1000;
            if (wait < timeout)
                timeout = wait < 0? 0: (int) wait;
        }
        int count = epoll_wait (self->epoll, events, 256, timeout);
        if (count < 0 && errno != EINTR) {
            fprintf (stderr, "sf_simfleet: epoll_wait: %s\n", strerror (errno));
            break;
        }
        s_now (self);
        for (int i = 0; i < count; i++)
            s_drain (self, &self->nodes [events [i].data.u32]);
        while ((first = (sim_timer_t *) sf_heap_top (&self->timers))
        &&     first->at <= s_now (self)) {
            sim_timer_t *timer = s_timer_pop (self);
            s_on_timer (self, timer);
            s_timer_spare (self, timer);
        }
        //  A send may have taken the socket's read notification: look again
        for (int i = 0; i < self->opt.nodes; i++)
            if (self->nodes [i].dirty)
                s_drain (self, &self->nodes [i]);
        if (self->now >= self->status_at) {
            s_write_status (self);
            self->status_at = self->now + 500000;
        }
    }
}

int
main (int argc, char *argv [])
{
    sim_t sim;
    memset (&sim, 0, sizeof (sim));
    sim.epoll = -1;
    sf_heap_init (&sim.timers, s_timer_before, SF_HEAP_NO_INDEX);
    options_t *o = &sim.opt;
    o->nodes = 1000;
    o->instances = 100;
    o->stores = 10;
    o->clusters = 4;
    o->seed = 1;
    o->max_jobs = 4;
    o->convert_bps = 800.0 * MIB;
    o->disk_min_bps = 400.0 * MIB;
    o->disk_max_bps = 1024.0 * MIB;
    o->scale = 1024;
    int rc = s_parse_args (o, argc, argv);
    if (rc >= 0)
        return rc;
    //  Defaults in modelled units: 2 TiB of scratch, 1 s per RBD snapshot
    if (!o->scratch_set)
        o->scratch_free = (uint64_t) ((double) (2ull << 40) / o->scale);
    if (!o->rbd_snap_set)
        o->rbd_snap_us = 1e6 / o->scale;
    zsys_init ();
    zsys_catch_interrupts ();
    fprintf (stderr, "sf_simfleet: SIMULATED hypervisor backend, %d nodes x %d instances,"
             " scale 1/%.0f, scheduler '%s'\n", o->nodes, o->instances, o->scale,
             o->endpoint? o->endpoint: "none (dry run)");
    if (s_setup (&sim))
        rc = 1;
    else
    if (o->dry_run)
        s_dry_run (&sim);
    else {
        s_run (&sim);
        s_now (&sim);
        s_write_status (&sim);
        s_write_summary (&sim);
    }
    s_teardown (&sim);
    return rc < 0? 0: rc;
}
