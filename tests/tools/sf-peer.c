/*  =========================================================================
    sf-peer - a hostile peer that speaks the protocol correctly

    Usage: sf-peer worker ENDPOINT [--cert PATH] [--server-key PATH] [--node NAME]
           sf-peer scheduler ENDPOINT [--cert PATH]

    A fake worker (DEALER, connects) or a fake scheduler (ROUTER, binds)
    that builds every message through sf_wire, as the real daemons do, and
    speaks CURVE with the key pair PATH (PATH_secret, 'snapfleet keygen';
    a worker pins the server's public key file). The integration tests
    (t0150, t0160) use it to say, through a channel the daemons accept,
    what a buggy or compromised peer could say.

    It reads commands from stdin, one a line, and prints one line per
    message it receives on stdout (flushed), "READY" once its socket is
    up, "DONE <command>" after each command, and "UNSENT <message>: why"
    for a message that could not be sent within 2 s (e.g. a DEALER whose
    handshakes fail has no connection to queue it on). It runs until SIGTERM (exit
    0) or "quit"; end of input only stops the reading.

    Worker commands (a fake worker also beats every second once welcomed,
    so that its node stays up):
      hello [NODE]                  Hello as NODE (default --node), file-live, file-cold
                                    and offline, store dir@NODE, 100 GiB free
      inventory [UUID:NAME ...]     an Inventory of these running instances,
                                    one 64 MiB qcow2 file disk each (none: empty)
      event JOB ATTEMPT PHASE       a JobEvent (phase: queued, paused, ...)
      result JOB ATTEMPT ok|fail [STORE ID PATH ...]
                                    a JobResult with these images (vda, qcow2)
      deleted REQUEST STORE ID      an ImageDeleted saying the image is gone
      flood N COUNT                 N times Hello + Inventory of COUNT
                                    instances (uuids fixed by index)
    Scheduler commands (a fake scheduler welcomes every Hello):
      delete REQUEST STORE ID PATH [CATALOG JOB]
                                    an ImageDelete to the last peer that said hello
      assign JOB ATTEMPT UUID STRATEGY [CATALOG]
                                    a JobAssign to the last peer that said hello
    Both: sleep MS, quit.

    Received (one line each): WELCOME, ASSIGN, CANCEL, GRANT, DELETE,
    ERROR (worker); HELLO, INVENTORY, EVENT, RESULT, DELETED, ERROR
    (scheduler; heartbeats are counted, not printed, and one from a peer
    that said no hello is answered "send hello", as the real scheduler
    does); INVALID for a frame that does not decode. Peer strings are printed as %q-like escapes.
    =========================================================================
*/
#include "sf_core.h"

#include <poll.h>
#include <unistd.h>

#define S_MAX_ARGS      64
#define S_GIB           (1024ull * 1024 * 1024)
#define S_DISK_BYTES    (64ull * 1024 * 1024)

typedef struct {
    bool scheduler;             //  fake scheduler (ROUTER) or fake worker
    zsock_t *sock;
    const char *node;           //  worker: default Hello name
    zframe_t *peer;             //  scheduler: routing id of the last Hello
    bool welcomed;              //  worker: beats from now on
    uint64_t beats;
    int64_t next_beat;          //  mono ms
    bool quit;
} peer_t;

//  Print a peer string with anything but printable ASCII escaped, so that
//  a line of output stays one line

static void
s_print_str (const char *text)
{
    for (const char *c = text? text: ""; *c; c++) {
        unsigned char ch = (unsigned char) *c;
        if (ch < 0x21 || ch > 0x7e || ch == '\\')
            printf ("\\x%02x", ch);
        else
            putchar (ch);
    }
}

static void
s_field (const char *key, const char *value)
{
    printf (" %s=", key);
    s_print_str (value);
}

static void
s_send (peer_t *self, sf_envelope_t *env)
{
    sf_err_t err = SF_ERR_INIT;
    if (sf_wire_send (zsock_resolve (self->sock), self->scheduler? self->peer: NULL, env, &err))
        printf ("UNSENT %s: %s\n", sf_wire_body_name (env->body_case), err.text);
}

//  --------------------------------------------------------------------------
//  Fake worker: what it says

static void
s_hello (peer_t *self, const char *node)
{
    char *strategies [] = { "file-live", "file-cold", "offline" };
    char store [128];
    snprintf (store, sizeof (store), "dir@%s", node);
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = (char *) node;
    hello.software = "sf-peer";
    hello.max_jobs = 4;
    hello.n_strategies = 3;
    hello.strategies = strategies;
    hello.store = store;
    hello.scratch_free = 100 * S_GIB;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HELLO, &hello);
    s_send (self, &env);
}

//  An Inventory of count instances: uuid and name of instance i from
//  names [2i] and names [2i+1]

static void
s_inventory (peer_t *self, char **names, size_t count)
{
    sf_instance_t *instances = (sf_instance_t *) zmalloc ((count + 1) * sizeof (sf_instance_t));
    sf_instance_t **ptrs = (sf_instance_t **) zmalloc ((count + 1) * sizeof (sf_instance_t *));
    sf_disk_t *disks = (sf_disk_t *) zmalloc ((count + 1) * sizeof (sf_disk_t));
    sf_disk_t **disk_ptrs = (sf_disk_t **) zmalloc ((count + 1) * sizeof (sf_disk_t *));
    char (*sources) [256] = zmalloc ((count + 1) * 256);
    for (size_t i = 0; i < count; i++) {
        sf_disk_t disk = SF_DISK_INIT;
        snprintf (sources [i], 256, "/var/lib/sf-peer/%s.qcow2", names [2 * i + 1]);
        disk.target = "vda";
        disk.type = SF_DISK_FILE;
        disk.source = sources [i];
        disk.format = "qcow2";
        disk.device = "disk";
        disk.virtual_size = S_DISK_BYTES;
        disk.allocated_size = S_DISK_BYTES / 4;
        disks [i] = disk;
        disk_ptrs [i] = &disks [i];
        sf_instance_t inst = SF_INSTANCE_INIT;
        inst.uuid = names [2 * i];
        inst.name = names [2 * i + 1];
        inst.state = SF_STATE_RUNNING;
        inst.storage_class = "file";
        inst.n_disks = 1;
        inst.disks = &disk_ptrs [i];
        instances [i] = inst;
        ptrs [i] = &instances [i];
    }
    sf_inventory_t inventory = SF_INVENTORY_INIT;
    inventory.n_instances = count;
    inventory.instances = ptrs;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_INVENTORY, &inventory);
    s_send (self, &env);
    free (sources);
    free (disk_ptrs);
    free (disks);
    free (ptrs);
    free (instances);
}

static int
s_phase (const char *name)
{
    for (int phase = SF_PHASE_QUEUED; phase <= SF_PHASE_LAST; phase++)
        if (streq (name, sf_wire_phase_name (phase)))
            return phase;
    return -1;
}

static void
s_event (peer_t *self, const char *job, uint32_t attempt, int phase)
{
    sf_job_event_t event = sf_wire_job_event (job, attempt, phase, 10, 0);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    s_send (self, &env);
}

//  A result with the images of triples (store, id, path)

static void
s_result (peer_t *self, const char *job, uint32_t attempt, bool ok, char **triples,
          size_t count)
{
    sf_image_t images [S_MAX_ARGS / 3];
    sf_image_t *ptrs [S_MAX_ARGS / 3];
    for (size_t i = 0; i < count; i++) {
        sf_image_t image = SF_IMAGE_INIT;
        image.store = triples [3 * i];
        image.id = triples [3 * i + 1];
        image.path = triples [3 * i + 2];
        image.size = S_DISK_BYTES / 4;
        image.disk_target = "vda";
        image.format = "qcow2";
        images [i] = image;
        ptrs [i] = &images [i];
    }
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = SF_EIO;
    error.text = "sf-peer says it failed";
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = (char *) job;
    result.attempt = attempt;
    result.ok = ok;
    result.strategy = "file-cold";
    result.consistency = "paused";
    result.pause_ms = 10;
    result.bytes = count * (S_DISK_BYTES / 4);
    result.resumed = true;
    result.n_images = count;
    result.images = ptrs;
    result.error = ok? NULL: &error;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    s_send (self, &env);
}

static void
s_deleted (peer_t *self, const char *request, const char *store, const char *id)
{
    sf_image_t image = SF_IMAGE_INIT;
    image.store = (char *) store;
    image.id = (char *) id;
    sf_image_deleted_t deleted = SF_IMAGE_DELETED_INIT;
    deleted.request_id = (char *) request;
    deleted.image = &image;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_IMAGE_DELETED, &deleted);
    s_send (self, &env);
}

//  rounds x (Hello, Inventory of count instances), as fast as the socket
//  takes them

static void
s_flood (peer_t *self, size_t rounds, size_t count)
{
    char **names = (char **) zmalloc ((2 * count + 1) * sizeof (char *));
    for (size_t i = 0; i < count; i++) {
        names [2 * i] = zsys_sprintf ("00000000-0000-4000-8000-%012zx", i);
        names [2 * i + 1] = zsys_sprintf ("flood%zu", i);
    }
    for (size_t r = 0; r < rounds && !zsys_interrupted; r++) {
        s_hello (self, self->node);
        s_inventory (self, names, count);
    }
    for (size_t i = 0; i < 2 * count; i++)
        zstr_free (&names [i]);
    free (names);
}

//  --------------------------------------------------------------------------
//  Fake scheduler: what it says

static void
s_delete (peer_t *self, char **argv, int argc)
{
    sf_image_t image = SF_IMAGE_INIT;
    image.store = argv [2];
    image.id = argv [3];
    image.path = argv [4];
    sf_image_delete_t request = SF_IMAGE_DELETE_INIT;
    request.request_id = argv [1];
    request.image = &image;
    request.catalog_id = argc > 5? argv [5]: "";
    request.job_id = argc > 6? argv [6]: "";
    sf_envelope_t env = sf_wire_envelope (SF_BODY_IMAGE_DELETE, &request);
    s_send (self, &env);
}

static void
s_assign (peer_t *self, char **argv, int argc)
{
    sf_job_assign_t assign = SF_JOB_ASSIGN_INIT;
    assign.job_id = argv [1];
    assign.attempt = (uint32_t) atoi (argv [2]);
    assign.instance_uuid = argv [3];
    assign.strategy = argv [4];
    assign.catalog_id = argc > 5? argv [5]: "";
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_ASSIGN, &assign);
    s_send (self, &env);
}

//  --------------------------------------------------------------------------
//  Commands

//  Split line into argv in place (blanks separate); returns argc

static int
s_split (char *line, char **argv)
{
    int argc = 0;
    for (char *tok = strtok (line, " \t\r\n"); tok && argc < S_MAX_ARGS;
         tok = strtok (NULL, " \t\r\n"))
        argv [argc++] = tok;
    return argc;
}

//  Run one command; returns 0, or -1 (usage, said on stderr)

static int
s_command (peer_t *self, char *line)
{
    char *argv [S_MAX_ARGS];
    int argc = s_split (line, argv);
    if (argc == 0)
        return 0;
    const char *cmd = argv [0];
    bool worker = !self->scheduler;
    if (streq (cmd, "quit"))
        self->quit = true;
    else
    if (streq (cmd, "sleep") && argc == 2)
        zclock_sleep (atoi (argv [1]));
    else
    if (worker && streq (cmd, "hello") && argc <= 2)
        s_hello (self, argc == 2? argv [1]: self->node);
    else
    if (worker && streq (cmd, "inventory")) {
        char *names [2 * S_MAX_ARGS];
        for (int i = 1; i < argc; i++) {
            char *colon = strchr (argv [i], ':');
            if (!colon)
                return -1;
            *colon = 0;
            names [2 * (i - 1)] = argv [i];
            names [2 * (i - 1) + 1] = colon + 1;
        }
        s_inventory (self, names, (size_t) argc - 1);
    }
    else
    if (worker && streq (cmd, "event") && argc == 4 && s_phase (argv [3]) > 0)
        s_event (self, argv [1], (uint32_t) atoi (argv [2]), s_phase (argv [3]));
    else
    if (worker && streq (cmd, "result") && argc >= 4 && (argc - 4) % 3 == 0)
        s_result (self, argv [1], (uint32_t) atoi (argv [2]), streq (argv [3], "ok"),
                  argv + 4, (size_t) (argc - 4) / 3);
    else
    if (worker && streq (cmd, "deleted") && argc == 4)
        s_deleted (self, argv [1], argv [2], argv [3]);
    else
    if (worker && streq (cmd, "flood") && argc == 3)
        s_flood (self, (size_t) atol (argv [1]), (size_t) atol (argv [2]));
    else
    if (!worker && streq (cmd, "delete") && argc >= 5 && argc <= 7 && self->peer)
        s_delete (self, argv, argc);
    else
    if (!worker && streq (cmd, "assign") && argc >= 5 && argc <= 6 && self->peer)
        s_assign (self, argv, argc);
    else
        return -1;
    printf ("DONE %s\n", cmd);
    return 0;
}

//  --------------------------------------------------------------------------
//  What the other side says

//  An Error, or a message of a kind this side does not expect

static void
s_print_other (const sf_envelope_t *env)
{
    if (env->body_case == SF_BODY_ERROR) {
        printf ("ERROR code=%s", sf_err_name (env->error->code));
        s_field ("text", env->error->text);
    }
    else
        printf ("OTHER %s", sf_wire_body_name (env->body_case));
}

static void
s_on_worker_side (peer_t *self, const sf_envelope_t *env)
{
    switch (env->body_case) {
        case SF_BODY_WELCOME:
            printf ("WELCOME heartbeat_ms=%u", env->welcome->heartbeat_ms);
            self->welcomed = true;
            break;
        case SF_BODY_JOB_ASSIGN:
            printf ("ASSIGN");
            s_field ("job", env->job_assign->job_id);
            printf (" attempt=%u", env->job_assign->attempt);
            s_field ("uuid", env->job_assign->instance_uuid);
            s_field ("strategy", env->job_assign->strategy);
            s_field ("catalog", env->job_assign->catalog_id);
            break;
        case SF_BODY_JOB_CANCEL:
            printf ("CANCEL");
            s_field ("job", env->job_cancel->job_id);
            printf (" attempt=%u", env->job_cancel->attempt);
            break;
        case SF_BODY_JOB_GRANT:
            printf ("GRANT");
            s_field ("job", env->job_grant->job_id);
            printf (" attempt=%u rate=%" PRIu64, env->job_grant->attempt,
                    env->job_grant->rate_bps);
            break;
        case SF_BODY_IMAGE_DELETE:
            printf ("DELETE");
            s_field ("request", env->image_delete->request_id);
            s_field ("store", env->image_delete->image->store);
            s_field ("id", env->image_delete->image->id);
            s_field ("catalog", env->image_delete->catalog_id);
            s_field ("job", env->image_delete->job_id);
            break;
        default:
            s_print_other (env);
    }
    printf ("\n");
}

static void
s_on_scheduler_side (peer_t *self, const sf_envelope_t *env, zframe_t **routing_id,
                     const char *key_name)
{
    switch (env->body_case) {
        case SF_BODY_HEARTBEAT:
            self->beats++;
            //  A peer we have no hello of is asked for one, as the real
            //  scheduler does
            if (!self->peer || !zframe_eq (self->peer, *routing_id)) {
                sf_error_info_t info = SF_ERROR_INFO_INIT;
                info.code = SF_ENODE;
                info.text = "unknown peer, send hello";
                sf_envelope_t answer = sf_wire_envelope (SF_BODY_ERROR, &info);
                sf_err_t err = SF_ERR_INIT;
                if (sf_wire_send (zsock_resolve (self->sock), *routing_id, &answer, &err))
                    printf ("UNSENT error: %s\n", err.text);
            }
            return;
        case SF_BODY_HELLO: {
            printf ("HELLO");
            s_field ("node", env->hello->node);
            s_field ("key", key_name);
            zframe_destroy (&self->peer);
            self->peer = *routing_id;
            *routing_id = NULL;
            sf_welcome_t welcome = SF_WELCOME_INIT;
            welcome.heartbeat_ms = 1000;
            sf_envelope_t answer = sf_wire_envelope (SF_BODY_WELCOME, &welcome);
            s_send (self, &answer);
            break;
        }
        case SF_BODY_INVENTORY:
            printf ("INVENTORY n=%zu", env->inventory->n_instances);
            break;
        case SF_BODY_JOB_EVENT:
            printf ("EVENT");
            s_field ("job", env->job_event->job_id);
            printf (" phase=%s", sf_wire_phase_name (env->job_event->phase));
            break;
        case SF_BODY_JOB_RESULT:
            printf ("RESULT");
            s_field ("job", env->job_result->job_id);
            printf (" ok=%d", env->job_result->ok);
            if (env->job_result->error)
                s_field ("error", env->job_result->error->text);
            break;
        case SF_BODY_IMAGE_DELETED: {
            const sf_error_info_t *error = env->image_deleted->error;
            printf ("DELETED");
            s_field ("request", env->image_deleted->request_id);
            printf (" code=%s", sf_err_name (error? error->code: 0));
            s_field ("text", error? error->text: "");
            break;
        }
        default:
            s_print_other (env);
    }
    printf ("\n");
}

static void
s_on_message (peer_t *self)
{
    sf_err_t err = SF_ERR_INIT;
    zframe_t *routing_id = NULL;
    char *key_name = NULL;
    sf_envelope_t *env = sf_wire_recv_peer (zsock_resolve (self->sock),
                                            self->scheduler? &routing_id: NULL,
                                            &key_name, &err);
    if (!env) {
        printf ("INVALID");
        s_field ("why", err.text);
        printf ("\n");
    }
    else
    if (self->scheduler)
        s_on_scheduler_side (self, env, &routing_id, key_name);
    else
        s_on_worker_side (self, env);
    sf_wire_free (&env);
    zframe_destroy (&routing_id);
    zstr_free (&key_name);
}

//  --------------------------------------------------------------------------
//  Set-up and the loop

//  Apply the key pair cert_path (and, for a worker, pin server_path).
//  Returns 0, or -1 said on stderr.

static int
s_curve (peer_t *self, const char *cert_path, const char *server_path)
{
    sf_err_t err = SF_ERR_INIT;
    char secret [4096];
    snprintf (secret, sizeof (secret), "%s_secret", cert_path);
    zcert_t *cert = sf_cert_load (secret, true, &err);
    zcert_t *server = NULL;
    int rc = -1;
    if (!cert)
        goto done;
    if (self->scheduler) {
        //  A CURVE server without a ZAP handler: any client key gets in
        zcert_apply (cert, self->sock);
        zsock_set_curve_server (self->sock, 1);
        rc = 0;
        goto done;
    }
    if (!server_path) {
        sf_err_set (&err, SF_EINVAL, "a worker needs --server-key with --cert");
        goto done;
    }
    server = sf_cert_load (server_path, false, &err);
    if (!server)
        goto done;
    sf_cert_client (zsock_resolve (self->sock), cert, server);
    rc = 0;
 done:
    if (rc)
        fprintf (stderr, "sf-peer: %s\n", err.text);
    zcert_destroy (&cert);
    zcert_destroy (&server);
    return rc;
}

//  Read what stdin has; run each complete line. Returns false at its end.

static bool
s_on_input (peer_t *self, char *buf, size_t size, size_t *used)
{
    ssize_t got = read (STDIN_FILENO, buf + *used, size - 1 - *used);
    if (got <= 0)
        return false;
    *used += (size_t) got;
    buf [*used] = 0;
    char *line = buf, *end;
    while ((end = strchr (line, '\n'))) {
        *end = 0;
        char copy [8192];
        snprintf (copy, sizeof (copy), "%s", line);
        if (s_command (self, line))
            fprintf (stderr, "sf-peer: bad command '%s'\n", copy);
        line = end + 1;
    }
    *used = strlen (line);
    memmove (buf, line, *used + 1);
    if (*used == size - 1) {
        fprintf (stderr, "sf-peer: command line too long\n");
        *used = 0;
    }
    return true;
}

static void
s_beat (peer_t *self)
{
    if (self->scheduler || !self->welcomed || sf_time_mono_ms () < self->next_beat)
        return;
    self->next_beat = sf_time_mono_ms () + 1000;
    sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
    beat.seq = ++self->beats;
    beat.scratch_free = 100 * S_GIB;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);
    s_send (self, &env);
}

static void
s_run (peer_t *self)
{
    char buf [8192];
    size_t used = 0;
    bool input = true;
    while (!self->quit && !zsys_interrupted) {
        //  Commands wait at most one socket poll (100 ms)
        struct pollfd in = { STDIN_FILENO, POLLIN, 0 };
        if (input && poll (&in, 1, 0) > 0)
            input = s_on_input (self, buf, sizeof (buf), &used);
        zmq_pollitem_t item = { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) > 0 && (item.revents & ZMQ_POLLIN))
            s_on_message (self);
        s_beat (self);
        fflush (stdout);
    }
}

static void
s_usage (void)
{
    fprintf (stderr, "usage: sf-peer worker|scheduler ENDPOINT [--cert PATH] "
                     "[--server-key PATH] [--node NAME]\n");
}

int
main (int argc, char *argv [])
{
    if (argc < 3 || (!streq (argv [1], "worker") && !streq (argv [1], "scheduler"))) {
        s_usage ();
        return 2;
    }
    peer_t self = { .scheduler = streq (argv [1], "scheduler"), .node = "sf-peer" };
    const char *endpoint = argv [2];
    const char *cert_path = NULL, *server_path = NULL;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (streq (argv [i], "--cert"))
            cert_path = argv [i + 1];
        else
        if (streq (argv [i], "--server-key"))
            server_path = argv [i + 1];
        else
        if (streq (argv [i], "--node"))
            self.node = argv [i + 1];
        else {
            s_usage ();
            return 2;
        }
    }
    if ((argc - 3) % 2) {
        s_usage ();
        return 2;
    }
    self.sock = zsock_new (self.scheduler? ZMQ_ROUTER: ZMQ_DEALER);
    zsock_set_sndhwm (self.sock, 100000);
    zsock_set_sndtimeo (self.sock, 2000);
    zsock_set_linger (self.sock, 2000);
    if (self.scheduler)
        zsock_set_router_mandatory (self.sock, 1);
    int rc = 1;
    if (cert_path && s_curve (&self, cert_path, server_path))
        goto done;
    if ((self.scheduler? zsock_bind (self.sock, "%s", endpoint)
                      : zsock_connect (self.sock, "%s", endpoint)) < 0) {
        fprintf (stderr, "sf-peer: cannot %s '%s'\n", self.scheduler? "bind": "connect to",
                 endpoint);
        goto done;
    }
    printf ("READY %s %s\n", argv [1], endpoint);
    fflush (stdout);
    s_run (&self);
    printf ("END heartbeats=%" PRIu64 "\n", self.beats);
    rc = 0;
 done:
    zframe_destroy (&self.peer);
    zsock_destroy (&self.sock);
    return rc;
}
