/*  =========================================================================
    sf_hv_libvirt - libvirt hypervisor driver

    One virConnectPtr per sf_hv_t. libvirt connections are thread-safe, but
    each worker thread (scanner, task) opens its own: that keeps a hung call
    from one job out of the others and makes test:///default (whose state
    lives in the connection) behave like one node per thread.
    Disks come from the live domain XML, parsed with libxml2.

    A hung libvirtd (stopped, deadlocked) must not hang a job, nor keep its
    guest paused: with an answer timeout T (sf_hv_set_answer_timeout,
    [hypervisor] answer_timeout):
    - calls on an open connection are bounded by libvirt's own keepalive
      (virConnectSetKeepAlive: a probe after T/6 s of silence, the
      connection closed after 5 unanswered ones, so about T). A call that
      waits on a closed connection fails at once, in the thread that made
      it, and so does every later call on it; nothing is left running. Its
      cost is one small message per T/6 s of silence. Keepalive needs an
      event loop: virEventRegisterDefaultImpl and one thread running
      virEventRunDefaultImpl for the process, started with the first
      connection.
    - virConnectOpen has no keepalive yet, so it runs in a helper thread
      that the caller waits for up to T; past that the caller fails and the
      helper, once libvirtd answers (or never), closes what it opened.
    Rather than a deadline thread around every call: a call cannot be
    abandoned safely (it holds the connection), and keepalive fails it in
    its own thread. The error names the daemon: "libvirtd at URI did not
    answer for N s". The pause guard sets T = 0 (no bound): it must wait
    for libvirtd, then resume; it retries while its journal entry stays.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <pthread.h>

SF_LOG_MODULE ("worker.libvirt");

#define S_KEEPALIVE_COUNT   5       //  unanswered probes before closing

//  Our state of one connection
typedef struct {
    virConnectPtr conn;
    int64_t answer_ms;          //  0: unbounded
    int close_reason;           //  set by the close callback, -1 while open
} conn_t;

//  libvirt prints every error on stderr unless told otherwise; we report
//  them through sf_err_t instead.

static void
s_silent (void *user, virErrorPtr error)
{
    (void) user;
    (void) error;
}

//  Set err from libvirt's last error (thread-local). Returns -1.

static int
s_error (sf_err_t *err, const char *what, const char *subject)
{
    virErrorPtr verr = virGetLastError ();
    int code = verr && verr->code == VIR_ERR_NO_DOMAIN ? SF_ENOENT : SF_EHV;
    const char *message = verr && verr->message ? verr->message : "unknown libvirt error";
    return sf_err_set (err, code, "cannot %s '%s': %s", what, subject, message);
}

static conn_t *
s_priv (sf_hv_t *self)
{
    return (conn_t *) sf_hv_priv (self);
}

static virConnectPtr
s_conn (sf_hv_t *self)
{
    return s_priv (self)->conn;
}

//  A call failed: if keepalive closed the connection (libvirtd did not
//  answer), say so; else libvirt's own error. Returns -1.

static int
s_fail (sf_hv_t *self, sf_err_t *err, const char *what, const char *subject)
{
    virErrorPtr verr = virGetLastError ();
    const char *message = verr && verr->message ? verr->message : "";
    conn_t *priv = s_priv (self);
    int reason = __atomic_load_n (&priv->close_reason, __ATOMIC_SEQ_CST);
    if (priv->answer_ms && (reason == VIR_CONNECT_CLOSE_REASON_KEEPALIVE
                        ||  strstr (message, "keepalive")))
        return sf_err_set (err, SF_ETIMEDOUT, "libvirtd at %s did not answer for %" PRId64
                           " s; cannot %s '%s'", sf_hv_uri (self),
                           (priv->answer_ms + 999) / 1000, what, subject);
    return s_error (err, what, subject);
}

//  --------------------------------------------------------------------------
//  The process's event loop (keepalive needs one)

static bool s_have_events = false;
static int s_events_run = 1;
static pthread_t s_events_thread;

static void *
s_event_loop (void *arg)
{
    (void) arg;
    while (__atomic_load_n (&s_events_run, __ATOMIC_SEQ_CST))
        if (virEventRunDefaultImpl () < 0)
            zclock_sleep (100);
    return NULL;
}

static void
s_event_start (void)
{
    if (virEventRegisterDefaultImpl () < 0)
        SF_WARN (NULL, "no libvirt event loop: calls to a hung libvirtd are not bounded");
    else
    if (pthread_create (&s_events_thread, NULL, s_event_loop, NULL) == 0)
        s_have_events = true;
}

//  A timer that only wakes the loop, once
static void
s_event_wake (int timer, void *opaque)
{
    (void) opaque;
    virEventRemoveTimeout (timer);
}

void
sf_hv_libvirt_shutdown (void)
{
    if (!s_have_events)
        return;
    __atomic_store_n (&s_events_run, 0, __ATOMIC_SEQ_CST);
    virEventAddTimeout (0, s_event_wake, NULL, NULL);
    pthread_join (s_events_thread, NULL);
    s_have_events = false;
}

static void
s_on_close (virConnectPtr conn, int reason, void *opaque)
{
    (void) conn;
    __atomic_store_n (&((conn_t *) opaque)->close_reason, reason, __ATOMIC_SEQ_CST);
}

//  --------------------------------------------------------------------------
//  Connect, bounded

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *uri;
    virConnectPtr conn;
    char error [512];
    bool done;
    bool abandoned;             //  the caller gave up: the opener cleans up
} opener_t;

static void
s_opener_free (opener_t *opener)
{
    pthread_mutex_destroy (&opener->lock);
    pthread_cond_destroy (&opener->cond);
    free (opener->uri);
    free (opener);
}

static void *
s_opener (void *arg)
{
    opener_t *opener = (opener_t *) arg;
    virConnectPtr conn = virConnectOpen (opener->uri);
    virErrorPtr verr = conn ? NULL : virGetLastError ();
    pthread_mutex_lock (&opener->lock);
    snprintf (opener->error, sizeof (opener->error), "%s",
              verr && verr->message ? verr->message : "unknown libvirt error");
    opener->conn = conn;
    opener->done = true;
    bool abandoned = opener->abandoned;
    pthread_cond_signal (&opener->cond);
    pthread_mutex_unlock (&opener->lock);
    if (abandoned) {
        if (conn) {
            SF_INFO (NULL, "libvirtd at %s answered again; a connection given up on "
                     "is closed", opener->uri);
            virConnectClose (conn);
        }
        s_opener_free (opener);
    }
    return NULL;
}

//  virConnectOpen (uri), given up after answer_ms (> 0)

static virConnectPtr
s_open_bounded (const char *uri, int64_t answer_ms, sf_err_t *err)
{
    opener_t *opener = (opener_t *) zmalloc (sizeof (opener_t));
    pthread_mutex_init (&opener->lock, NULL);
    pthread_cond_init (&opener->cond, NULL);
    opener->uri = strdup (uri);
    pthread_t thread;
    if (pthread_create (&thread, NULL, s_opener, opener)) {
        s_opener_free (opener);
        virConnectPtr conn = virConnectOpen (uri);
        if (!conn)
            s_error (err, "connect to hypervisor", uri);
        return conn;
    }
    pthread_detach (thread);
    struct timespec until;
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += (time_t) (answer_ms / 1000);
    until.tv_nsec += (long) (answer_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock (&opener->lock);
    while (!opener->done)
        if (pthread_cond_timedwait (&opener->cond, &opener->lock, &until) == ETIMEDOUT)
            break;
    bool done = opener->done;
    virConnectPtr conn = opener->conn;
    if (!done)
        opener->abandoned = true;
    else
    if (!conn)
        sf_err_set (err, SF_EHV, "cannot connect to hypervisor '%s': %s", uri,
                    opener->error);
    pthread_mutex_unlock (&opener->lock);
    if (done)
        s_opener_free (opener);
    else
        sf_err_set (err, SF_ETIMEDOUT, "libvirtd at %s did not answer for %" PRId64 " s; "
                    "cannot connect to it", uri, (answer_ms + 999) / 1000);
    return conn;
}

static int
s_open (sf_hv_t *self, const char *uri, sf_err_t *err)
{
    static pthread_once_t events_once = PTHREAD_ONCE_INIT;
    virSetErrorFunc (NULL, s_silent);
    int64_t answer_ms = sf_hv_answer_timeout ();
    if (answer_ms)
        pthread_once (&events_once, s_event_start);
    if (!s_have_events)
        answer_ms = 0;
    virConnectPtr conn = answer_ms ? s_open_bounded (uri, answer_ms, err)
                                   : virConnectOpen (uri);
    if (!conn)
        return answer_ms ? -1 : s_error (err, "connect to hypervisor", uri);
    conn_t *priv = (conn_t *) zmalloc (sizeof (conn_t));
    priv->conn = conn;
    priv->answer_ms = answer_ms;
    priv->close_reason = -1;
    if (answer_ms) {
        //  (count + 1) probes' time in all; 1 s apart at least
        int interval = (int) (answer_ms / 1000 / (S_KEEPALIVE_COUNT + 1));
        unsigned int count = S_KEEPALIVE_COUNT;
        if (interval < 1) {
            interval = 1;
            count = answer_ms / 1000 > 1 ? (unsigned int) (answer_ms / 1000 - 1) : 1;
        }
        virConnectRegisterCloseCallback (conn, s_on_close, priv, NULL);
        if (virConnectSetKeepAlive (conn, interval, count) != 0) {
            //  test:// and other local drivers have none, and need none
            SF_DEBUG (NULL, "no keepalive on '%s'", uri);
            virResetLastError ();
        }
    }
    sf_hv_set_priv (self, priv);
    return 0;
}

static void
s_close (sf_hv_t *self)
{
    conn_t *priv = s_priv (self);
    if (priv->answer_ms)
        virConnectUnregisterCloseCallback (priv->conn, s_on_close);
    virConnectClose (priv->conn);
    free (priv);
    sf_hv_set_priv (self, NULL);
}

static int
s_map_state (int state)
{
    switch (state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:    return SF_HV_RUNNING;
        case VIR_DOMAIN_PAUSED:     return SF_HV_PAUSED;
        case VIR_DOMAIN_SHUTOFF:    return SF_HV_SHUTOFF;
        default:                    return SF_HV_OTHER;
    }
}

//  --------------------------------------------------------------------------
//  Domain XML -> disks and tags

//  Attribute as a malloc'd string ("" if absent)

static char *
s_attr (xmlNodePtr node, const char *name)
{
    xmlChar *value = node ? xmlGetProp (node, BAD_CAST name) : NULL;
    char *copy = strdup (value ? (const char *) value : "");
    xmlFree (value);
    return copy;
}

static xmlNodePtr
s_child (xmlNodePtr node, const char *name)
{
    for (xmlNodePtr child = node->children; child; child = child->next)
        if (child->type == XML_ELEMENT_NODE && xmlStrEqual (child->name, BAD_CAST name))
            return child;
    return NULL;
}

//  Source of a disk by its type: file, dev, protocol+name, or pool/volume

static void
s_disk_source (sf_hv_disk_t *disk, const char *type, xmlNodePtr source)
{
    disk->protocol = strdup ("");
    if (streq (type, "file")) {
        disk->type = SF_DISK_FILE;
        disk->source = s_attr (source, "file");
    }
    else
    if (streq (type, "block")) {
        disk->type = SF_DISK_BLOCK;
        disk->source = s_attr (source, "dev");
    }
    else
    if (streq (type, "network")) {
        free (disk->protocol);
        disk->protocol = s_attr (source, "protocol");
        disk->type = streq (disk->protocol, "rbd") ? SF_DISK_RBD : SF_DISK_OTHER;
        disk->source = s_attr (source, "name");
    }
    else
    if (streq (type, "volume")) {
        char *pool = s_attr (source, "pool");
        char *volume = s_attr (source, "volume");
        disk->source = *pool ? zsys_sprintf ("%s/%s", pool, volume) : strdup ("");
        free (pool);
        free (volume);
    }
    else
        disk->source = strdup ("");
}

static sf_hv_disk_t *
s_disk_parse (xmlNodePtr node)
{
    sf_hv_disk_t *disk = sf_hv_disk_new ();
    char *type = s_attr (node, "type");
    disk->device = s_attr (node, "device");
    if (!*disk->device) {
        free (disk->device);
        disk->device = strdup ("disk");
    }
    //  No format in the XML means raw, as QEMU itself reads it: never the
    //  format a probe would find (a guest can write any header into its
    //  raw disk, a qcow2 one with a backing file of its choosing included)
    disk->format = s_attr (s_child (node, "driver"), "type");
    if (!*disk->format) {
        free (disk->format);
        disk->format = strdup ("raw");
    }
    disk->target = s_attr (s_child (node, "target"), "dev");
    s_disk_source (disk, type, s_child (node, "source"));
    free (type);
    return disk;
}

//  Tags from <metadata><X:tags xmlns:X="urn:snapfleet:tags:1"><X:tag key=
//  value=/>: the tags element by namespace URI, whatever its prefix; its
//  tag children in that namespace (or none: hand-written XML may leave the
//  children unqualified). A bad tag is skipped with a warning.

static bool
s_in_tags_ns (xmlNodePtr node, bool or_none)
{
    if (!node->ns)
        return or_none;
    return node->ns->href && xmlStrEqual (node->ns->href, BAD_CAST SF_HV_TAGS_NS);
}

static void
s_tags_parse (sf_hv_domain_t *domain, xmlNodePtr metadata)
{
    for (xmlNodePtr tags = metadata->children; tags; tags = tags->next) {
        if (tags->type != XML_ELEMENT_NODE || !xmlStrEqual (tags->name, BAD_CAST "tags")
        ||  !s_in_tags_ns (tags, false))
            continue;
        for (xmlNodePtr node = tags->children; node; node = node->next) {
            if (node->type != XML_ELEMENT_NODE || !xmlStrEqual (node->name, BAD_CAST "tag")
            ||  !s_in_tags_ns (node, true))
                continue;
            xmlChar *key = xmlGetProp (node, BAD_CAST "key");
            xmlChar *value = xmlGetProp (node, BAD_CAST "value");
            sf_err_t err = SF_ERR_INIT;
            if (!key || !value)
                sf_err_set (&err, SF_EINVAL, "a tag without %s", key ? "a value" : "a key");
            else
                sf_hv_domain_tag_add (domain, (const char *) key, (const char *) value, &err);
            if (err.code)
                SF_WARN (NULL, "domain '%s': tag skipped: %s", domain->name, err.text);
            xmlFree (key);
            xmlFree (value);
        }
    }
}

static int
s_domain_from_xml (sf_hv_domain_t *domain, const char *xml, sf_err_t *err)
{
    int rc = -1;
    xmlXPathContextPtr xpath = NULL;
    xmlXPathObjectPtr result = NULL;
    xmlDocPtr doc = xmlReadMemory (xml, (int) strlen (xml), "domain.xml", NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        sf_err_set (err, SF_EHV, "cannot parse the XML of domain '%s'", domain->name);
        goto cleanup;
    }
    xpath = xmlXPathNewContext (doc);
    result = xpath ? xmlXPathEvalExpression (BAD_CAST "/domain/devices/disk", xpath) : NULL;
    if (!result) {
        sf_err_set (err, SF_EHV, "cannot read the disks of domain '%s'", domain->name);
        goto cleanup;
    }
    xmlNodeSetPtr nodes = result->nodesetval;
    for (int i = 0; nodes && i < nodes->nodeNr; i++)
        zlistx_add_end (domain->disks, s_disk_parse (nodes->nodeTab [i]));
    xmlNodePtr root = xmlDocGetRootElement (doc);
    xmlNodePtr metadata = root ? s_child (root, "metadata") : NULL;
    if (metadata)
        s_tags_parse (domain, metadata);
    rc = 0;
 cleanup:
    xmlXPathFreeObject (result);
    xmlXPathFreeContext (xpath);
    xmlFreeDoc (doc);
    return rc;
}

//  --------------------------------------------------------------------------
//  Read one domain into a value

static sf_hv_domain_t *
s_domain_read (sf_hv_t *self, virDomainPtr dom, sf_err_t *err)
{
    char uuid [VIR_UUID_STRING_BUFLEN];
    const char *name = virDomainGetName (dom);
    if (virDomainGetUUIDString (dom, uuid) || !name) {
        s_fail (self, err, "read domain", name ? name : "?");
        return NULL;
    }
    int state, reason;
    if (virDomainGetState (dom, &state, &reason, 0)) {
        s_fail (self, err, "get the state of domain", name);
        return NULL;
    }
    char *xml = virDomainGetXMLDesc (dom, 0);
    if (!xml) {
        s_fail (self, err, "get the XML of domain", name);
        return NULL;
    }
    sf_hv_domain_t *domain = sf_hv_domain_new (uuid, name, s_map_state (state));
    if (s_domain_from_xml (domain, xml, err))
        sf_hv_domain_destroy (&domain);
    free (xml);
    return domain;
}

static int
s_list (sf_hv_t *self, zlistx_t *list, sf_err_t *err)
{
    virDomainPtr *doms = NULL;
    int count = virConnectListAllDomains (s_conn (self), &doms, 0);
    if (count < 0)
        return s_fail (self, err, "list domains of", sf_hv_uri (self));
    int rc = 0;
    for (int i = 0; i < count; i++) {
        sf_err_t dom_err = SF_ERR_INIT;
        sf_hv_domain_t *domain = s_domain_read (self, doms [i], &dom_err);
        if (domain)
            zlistx_add_end (list, domain);
        else    //  a domain that vanished while listing is not an error
            SF_DEBUG (NULL, "%s", dom_err.text);
        virDomainFree (doms [i]);
    }
    free (doms);
    return rc;
}

static virDomainPtr
s_lookup_dom (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = virDomainLookupByUUIDString (s_conn (self), uuid);
    if (!dom) {
        s_fail (self, err, "find domain", uuid);
        if (err && err->code == SF_ENOENT)
            sf_err_set (err, SF_ENOENT, "no domain with uuid '%s'", uuid);
    }
    return dom;
}

static sf_hv_domain_t *
s_lookup (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return NULL;
    sf_hv_domain_t *domain = s_domain_read (self, dom, err);
    virDomainFree (dom);
    return domain;
}

static int
s_state (sf_hv_t *self, const char *uuid, int *state, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int vstate, reason, rc = 0;
    if (virDomainGetState (dom, &vstate, &reason, 0))
        rc = s_fail (self, err, "get the state of domain", uuid);
    else
        *state = s_map_state (vstate);
    virDomainFree (dom);
    return rc;
}

static int
s_suspend (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = virDomainSuspend (dom) ? s_fail (self, err, "suspend domain", uuid) : 0;
    virDomainFree (dom);
    return rc;
}

static int
s_resume (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = virDomainResume (dom) ? s_fail (self, err, "resume domain", uuid) : 0;
    virDomainFree (dom);
    return rc;
}

//  Freezing is unavailable without an agent channel (ARGUMENT_UNSUPPORTED
//  "argument unsupported: QEMU guest agent is not configured") or without an
//  agent answering on it (AGENT_UNRESPONSIVE "Guest agent is not responding:
//  QEMU guest agent is not connected"): then the text is the reason alone,
//  after the code's own words (notes/libvirt.md).

static int
s_agent_error (sf_hv_t *self, sf_err_t *err, const char *what, const char *uuid)
{
    virErrorPtr verr = virGetLastError ();
    if (verr && verr->message && (verr->code == VIR_ERR_ARGUMENT_UNSUPPORTED
                               || verr->code == VIR_ERR_AGENT_UNRESPONSIVE)) {
        const char *reason = strstr (verr->message, ": ");
        return sf_err_set (err, SF_ENOTSUP, "%s", reason ? reason + 2 : verr->message);
    }
    return s_fail (self, err, what, uuid);
}

static int
s_fs_freeze (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int count = virDomainFSFreeze (dom, NULL, 0, 0);
    int rc = count < 0
           ? s_agent_error (self, err, "freeze the filesystems of domain", uuid) : 0;
    if (count >= 0)
        SF_DEBUG (NULL, "froze %d filesystem(s) of '%s'", count, uuid);
    virDomainFree (dom);
    return rc;
}

static int
s_fs_thaw (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = virDomainFSThaw (dom, NULL, 0, 0) < 0
           ? s_agent_error (self, err, "thaw the filesystems of domain", uuid) : 0;
    virDomainFree (dom);
    return rc;
}

//  --------------------------------------------------------------------------
//  Live copies: push backup, external snapshot, active commit

//  What libvirt refuses as unsupported (no such API in the driver, an
//  operation, argument or configuration it cannot do) is SF_ENOTSUP with
//  libvirt's words, so that the task can fall back (a driver that knows
//  the call but not our flags says "unsupported flags" as an invalid
//  argument: test:///default's snapshots); the rest as s_fail.

static int
s_live_error (sf_hv_t *self, sf_err_t *err, const char *what, const char *uuid)
{
    virErrorPtr verr = virGetLastError ();
    if (verr && (verr->code == VIR_ERR_NO_SUPPORT
             ||  verr->code == VIR_ERR_OPERATION_UNSUPPORTED
             ||  verr->code == VIR_ERR_ARGUMENT_UNSUPPORTED
             ||  verr->code == VIR_ERR_CONFIG_UNSUPPORTED
             ||  (verr->code == VIR_ERR_INVALID_ARG && verr->message
                  && strstr (verr->message, "unsupported flags"))))
        return sf_err_set (err, SF_ENOTSUP, "%s",
                           verr->message ? verr->message : "not supported");
    return s_fail (self, err, what, uuid);
}

static int
s_backup_begin (sf_hv_t *self, const char *uuid, const char *xml, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    //  The targets exist (the task made them, for QEMU's user to write)
    int rc = virDomainBackupBegin (dom, xml, NULL, VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL)
           ? s_live_error (self, err, "start a backup of domain", uuid) : 0;
    virDomainFree (dom);
    return rc;
}

static int
s_backup_begin_cp (sf_hv_t *self, const char *uuid, const char *xml,
                   const char *checkpoint_xml, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = virDomainBackupBegin (dom, xml, checkpoint_xml,
                                   VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL)
           ? s_live_error (self, err, "start a backup (with a checkpoint) of domain", uuid)
           : 0;
    virDomainFree (dom);
    return rc;
}

static int
s_checkpoint_list (sf_hv_t *self, const char *uuid, zlistx_t *names, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    virDomainCheckpointPtr *checkpoints = NULL;
    int count = virDomainListAllCheckpoints (dom, &checkpoints, 0);
    int rc = count < 0 ? s_live_error (self, err, "list the checkpoints of domain", uuid) : 0;
    for (int i = 0; i < count; i++) {
        const char *name = virDomainCheckpointGetName (checkpoints [i]);
        if (name)
            zlistx_add_end (names, strdup (name));
        virDomainCheckpointFree (checkpoints [i]);
    }
    free (checkpoints);
    virDomainFree (dom);
    return rc;
}

static int
s_checkpoint_delete (sf_hv_t *self, const char *uuid, const char *name, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = 0;
    virDomainCheckpointPtr checkpoint = virDomainCheckpointLookupByName (dom, name, 0);
    if (!checkpoint) {
        virErrorPtr verr = virGetLastError ();
        if (!verr || verr->code != VIR_ERR_NO_DOMAIN_CHECKPOINT)
            rc = s_live_error (self, err, "look up a checkpoint of domain", uuid);
    }
    else {
        if (virDomainCheckpointDelete (checkpoint, 0))
            rc = s_live_error (self, err, "delete a checkpoint of domain", uuid);
        virDomainCheckpointFree (checkpoint);
    }
    virDomainFree (dom);
    return rc;
}

static unsigned long long
s_param_ull (virTypedParameterPtr params, int count, const char *name)
{
    unsigned long long value = 0;
    if (virTypedParamsGetULLong (params, count, name, &value) != 1)
        value = 0;
    return value;
}

static int
s_backup_poll (sf_hv_t *self, const char *uuid, sf_hv_progress_t *progress, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = 0, type = VIR_DOMAIN_JOB_NONE, count = 0;
    virTypedParameterPtr params = NULL;
    if (virDomainGetJobStats (dom, &type, &params, &count, 0)) {
        rc = s_fail (self, err, "read the backup job of domain", uuid);
        goto done;
    }
    if (type != VIR_DOMAIN_JOB_NONE) {
        progress->processed = s_param_ull (params, count, VIR_DOMAIN_JOB_DATA_PROCESSED);
        progress->total = s_param_ull (params, count, VIR_DOMAIN_JOB_DATA_TOTAL);
        goto done;
    }
    //  Over: the last completed job's stats say how (read once: libvirt
    //  drops them then)
    virTypedParamsFree (params, count);
    params = NULL;
    count = 0;
    if (virDomainGetJobStats (dom, &type, &params, &count,
                              VIR_DOMAIN_JOB_STATS_COMPLETED)) {
        rc = s_fail (self, err, "read the ended backup job of domain", uuid);
        goto done;
    }
    int operation = 0;
    if (virTypedParamsGetInt (params, count, VIR_DOMAIN_JOB_OPERATION, &operation) != 1)
        operation = 0;
    const char *message = NULL;
    if (virTypedParamsGetString (params, count, VIR_DOMAIN_JOB_ERRMSG, &message) != 1)
        message = NULL;
    if (type == VIR_DOMAIN_JOB_COMPLETED && operation == VIR_DOMAIN_JOB_OPERATION_BACKUP) {
        progress->done = true;
        progress->processed = s_param_ull (params, count, VIR_DOMAIN_JOB_DATA_PROCESSED);
        progress->total = s_param_ull (params, count, VIR_DOMAIN_JOB_DATA_TOTAL);
    }
    else
    if (type == VIR_DOMAIN_JOB_NONE)
        rc = sf_err_set (err, SF_EHV, "the backup of domain '%s' ended without a result",
                         uuid);
    else
        rc = sf_err_set (err, SF_EHV, "the backup of domain '%s' %s%s%s", uuid,
                         type == VIR_DOMAIN_JOB_CANCELLED ? "was cancelled"
                         : operation != VIR_DOMAIN_JOB_OPERATION_BACKUP
                         ? "was ended by another job" : "failed",
                         message ? ": " : "", message ? message : "");
 done:
    virTypedParamsFree (params, count);
    virDomainFree (dom);
    return rc;
}

static int
s_backup_abort (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    virDomainJobInfo info;
    int rc = 0;
    if (virDomainGetJobInfo (dom, &info))
        rc = s_fail (self, err, "read the backup job of domain", uuid);
    else
    if (info.type != VIR_DOMAIN_JOB_NONE && virDomainAbortJob (dom))
        rc = s_fail (self, err, "abort the backup job of domain", uuid);
    virDomainFree (dom);
    return rc;
}

static int
s_snapshot_external (sf_hv_t *self, const char *uuid, const char *xml, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    unsigned int flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
                       | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
                       | VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
                       | VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT;
    virDomainSnapshotPtr snap = virDomainSnapshotCreateXML (dom, xml, flags);
    int rc = snap ? 0 : s_live_error (self, err, "take an external snapshot of domain", uuid);
    if (snap)
        virDomainSnapshotFree (snap);
    virDomainFree (dom);
    return rc;
}

//  ACTIVE|SHALLOW: the top layer into the file right below it, never into
//  a base further down (notes/libvirt.md: a shared base file)

static int
s_commit_start (sf_hv_t *self, const char *uuid, const char *target, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    unsigned int flags = VIR_DOMAIN_BLOCK_COMMIT_ACTIVE | VIR_DOMAIN_BLOCK_COMMIT_SHALLOW;
    int rc = virDomainBlockCommit (dom, target, NULL, NULL, 0, flags)
           ? s_live_error (self, err, "start the block commit of domain", uuid) : 0;
    virDomainFree (dom);
    return rc;
}

static int
s_commit_pivot (sf_hv_t *self, const char *uuid, const char *target, bool *ready,
                sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = 0;
    *ready = false;
    virDomainBlockJobInfo info;
    int have = virDomainGetBlockJobInfo (dom, target, &info, 0);
    if (have < 0)
        rc = s_fail (self, err, "read the block commit of domain", uuid);
    else
    if (have == 0)
        rc = sf_err_set (err, SF_EHV, "the block commit of disk '%s' of domain '%s' "
                         "ended before its pivot", target, uuid);
    else
    if (info.cur == info.end) {
        if (virDomainBlockJobAbort (dom, target, VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) == 0)
            *ready = true;
        else {
            virErrorPtr verr = virGetLastError ();
            if (!verr || verr->code != VIR_ERR_BLOCK_COPY_ACTIVE)
                rc = s_fail (self, err, "pivot the block commit of domain", uuid);
        }
    }
    virDomainFree (dom);
    return rc;
}

static int
s_commit_abort (sf_hv_t *self, const char *uuid, const char *target, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = virDomainBlockJobAbort (dom, target, 0)
           ? s_fail (self, err, "abort the block commit of domain", uuid) : 0;
    virDomainFree (dom);
    return rc;
}

//  --------------------------------------------------------------------------
//  Domains made from XML

static int
s_domain_xml (sf_hv_t *self, const char *uuid, char **xml, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    char *text = virDomainGetXMLDesc (dom, VIR_DOMAIN_XML_INACTIVE);
    int rc = text ? 0 : s_fail (self, err, "get the XML of domain", uuid);
    virDomainFree (dom);
    *xml = text;            //  libvirt's malloc: free () frees it
    return rc;
}

static int
s_name_exists (sf_hv_t *self, const char *name, bool *exists, sf_err_t *err)
{
    virDomainPtr dom = virDomainLookupByName (s_conn (self), name);
    if (dom) {
        virDomainFree (dom);
        *exists = true;
        return 0;
    }
    virErrorPtr verr = virGetLastError ();
    if (verr && verr->code == VIR_ERR_NO_DOMAIN) {
        *exists = false;
        return 0;
    }
    return s_fail (self, err, "look up domain", name);
}

static int
s_define (sf_hv_t *self, const char *name, const char *xml, char *uuid, size_t uuid_size,
          sf_err_t *err)
{
    virDomainPtr dom = virDomainDefineXMLFlags (s_conn (self), xml,
                                                VIR_DOMAIN_DEFINE_VALIDATE);
    if (!dom)
        return s_fail (self, err, "define domain", name);
    char text [VIR_UUID_STRING_BUFLEN] = "";
    const char *got = virDomainGetName (dom);
    int rc = 0;
    if (virDomainGetUUIDString (dom, text))
        rc = s_fail (self, err, "get the uuid of new domain", name);
    else
    if (!got || !streq (got, name))     //  the XML was ours: never so
        rc = sf_err_set (err, SF_EHV, "defined domain is named '%s', not '%s'",
                         got ? got : "", name);
    snprintf (uuid, uuid_size, "%s", text);
    virDomainFree (dom);
    return rc;
}

static int
s_create_transient (sf_hv_t *self, const char *name, const char *xml, sf_err_t *err)
{
    virDomainPtr dom = virDomainCreateXML (s_conn (self), xml, 0);
    if (!dom)
        return s_fail (self, err, "start transient domain", name);
    virDomainFree (dom);
    return 0;
}

static int
s_destroy_named (sf_hv_t *self, const char *name, sf_err_t *err)
{
    virDomainPtr dom = virDomainLookupByName (s_conn (self), name);
    if (!dom) {
        s_fail (self, err, "find domain", name);
        return -1;
    }
    //  Only a transient copy is ours: a persistent domain of the name is
    //  someone's guest (snapfleet- names are refused for them, but a domain
    //  defined outside snapfleet may take any name)
    int persistent = virDomainIsPersistent (dom);
    int rc = persistent != 0
           ? sf_err_set (err, persistent == 1 ? SF_EEXIST : SF_EHV, "domain '%s' is %s: not "
                         "a transient copy of ours, left alone", name,
                         persistent == 1 ? "persistent" : "of unknown persistence")
           : virDomainDestroy (dom) ? s_fail (self, err, "destroy domain", name) : 0;
    virDomainFree (dom);
    return rc;
}

static int
s_agent_ping (sf_hv_t *self, const char *name, int timeout_s, sf_err_t *err)
{
    virDomainPtr dom = virDomainLookupByName (s_conn (self), name);
    if (!dom)
        return s_fail (self, err, "find domain", name);
    char *reply = virDomainQemuAgentCommand (dom, "{\"execute\":\"guest-ping\"}",
                                             timeout_s, 0);
    int rc = reply ? 0 : s_agent_error (self, err, "ping the guest agent of domain", name);
    free (reply);
    virDomainFree (dom);
    return rc;
}

const sf_hv_driver_t sf_hv_libvirt_driver = {
    .name      = "libvirt",
    .open      = s_open,
    .close     = s_close,
    .list      = s_list,
    .lookup    = s_lookup,
    .state     = s_state,
    .suspend   = s_suspend,
    .resume    = s_resume,
    .fs_freeze = s_fs_freeze,
    .fs_thaw   = s_fs_thaw,
    .backup_begin = s_backup_begin,
    .backup_poll = s_backup_poll,
    .backup_abort = s_backup_abort,
    .backup_begin_cp = s_backup_begin_cp,
    .checkpoint_list = s_checkpoint_list,
    .checkpoint_delete = s_checkpoint_delete,
    .snapshot_external = s_snapshot_external,
    .commit_start = s_commit_start,
    .commit_pivot = s_commit_pivot,
    .commit_abort = s_commit_abort,
    .domain_xml = s_domain_xml,
    .name_exists = s_name_exists,
    .define = s_define,
    .create_transient = s_create_transient,
    .destroy_named = s_destroy_named,
    .agent_ping = s_agent_ping,
};
