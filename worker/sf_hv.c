/*  =========================================================================
    sf_hv - hypervisor interface: dispatch, domain values, storage class,
    strategy fitness and the qemu-img size probe
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

//  Structure of our class

struct _sf_hv_t {
    const sf_hv_driver_t *driver;   //  Selected driver, never NULL
    void *priv;                     //  Driver-private state
    char *uri;                      //  Owned
};

SF_LOG_MODULE ("worker.hv");

static const sf_hv_driver_t *s_drivers [] = {
    &sf_hv_libvirt_driver,
    NULL
};

//  sf_hv_set_answer_timeout: read by every driver's open
static volatile int64_t s_answer_ms = SF_HV_ANSWER_MS;

void
sf_hv_set_answer_timeout (int64_t ms)
{
    assert (ms >= 0);
    __atomic_store_n (&s_answer_ms, ms, __ATOMIC_SEQ_CST);
}

int64_t
sf_hv_answer_timeout (void)
{
    return __atomic_load_n (&s_answer_ms, __ATOMIC_SEQ_CST);
}

//  sf_hv_set_backup_api: read by the tasks of file-live
static volatile int s_backup_api = 1;

void
sf_hv_set_backup_api (bool on)
{
    __atomic_store_n (&s_backup_api, on ? 1 : 0, __ATOMIC_SEQ_CST);
}

bool
sf_hv_backup_api (void)
{
    return __atomic_load_n (&s_backup_api, __ATOMIC_SEQ_CST) != 0;
}

void
sf_hv_shutdown (void)
{
    sf_hv_libvirt_shutdown ();
}

//  --------------------------------------------------------------------------
//  Constructor: every URI goes to libvirt today; a driver for another
//  hypervisor would claim its own URI scheme here.

sf_hv_t *
sf_hv_new (const char *uri, sf_err_t *err)
{
    assert (uri);
    sf_hv_t *self = (sf_hv_t *) zmalloc (sizeof (sf_hv_t));
    self->driver = s_drivers [0];
    self->uri = strdup (uri);
    if (self->driver->open (self, uri, err))
        sf_hv_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_hv_destroy (sf_hv_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_hv_t *self = *self_p;
        if (self->priv)
            self->driver->close (self);
        free (self->uri);
        free (self);
        *self_p = NULL;
    }
}

void *
sf_hv_priv (sf_hv_t *self)
{
    assert (self);
    return self->priv;
}

void
sf_hv_set_priv (sf_hv_t *self, void *priv)
{
    assert (self);
    self->priv = priv;
}

const char *
sf_hv_uri (sf_hv_t *self)
{
    assert (self);
    return self->uri;
}

//  --------------------------------------------------------------------------
//  Values

sf_hv_disk_t *
sf_hv_disk_new (void)
{
    sf_hv_disk_t *self = (sf_hv_disk_t *) zmalloc (sizeof (sf_hv_disk_t));
    self->backing_chain = zlistx_new ();
    zlistx_set_destructor (self->backing_chain, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_duplicator (self->backing_chain, (zlistx_duplicator_fn *) strdup);
    self->type = SF_DISK_OTHER;
    return self;
}

void
sf_hv_disk_destroy (sf_hv_disk_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_hv_disk_t *self = *self_p;
        free (self->target);
        free (self->source);
        free (self->protocol);
        free (self->format);
        free (self->device);
        zlistx_destroy (&self->backing_chain);
        free (self);
        *self_p = NULL;
    }
}

static void
s_tag_destroy (sf_hv_tag_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->key);
        free ((*self_p)->value);
        free (*self_p);
        *self_p = NULL;
    }
}

sf_hv_domain_t *
sf_hv_domain_new (const char *uuid, const char *name, int state)
{
    sf_hv_domain_t *self = (sf_hv_domain_t *) zmalloc (sizeof (sf_hv_domain_t));
    snprintf (self->uuid, sizeof (self->uuid), "%s", uuid);
    for (char *c = self->uuid; *c; c++)
        *c = (char) tolower ((unsigned char) *c);
    self->name = strdup (name);
    self->state = state;
    self->disks = zlistx_new ();
    zlistx_set_destructor (self->disks, (zlistx_destructor_fn *) sf_hv_disk_destroy);
    self->tags = zlistx_new ();
    zlistx_set_destructor (self->tags, (zlistx_destructor_fn *) s_tag_destroy);
    return self;
}

void
sf_hv_domain_destroy (sf_hv_domain_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_hv_domain_t *self = *self_p;
        free (self->name);
        free (self->refusal);
        zlistx_destroy (&self->disks);
        zlistx_destroy (&self->tags);
        free (self);
        *self_p = NULL;
    }
}

int
sf_hv_tag_check (const char *key, const char *value, sf_err_t *err)
{
    assert (key && value);
    size_t len = strlen (key);
    if (len == 0)
        return sf_err_set (err, SF_EINVAL, "tag without a key");
    if (len > SF_HV_TAG_KEY_MAX)
        return sf_err_set (err, SF_EINVAL, "tag key '%.20s...' is longer than %d bytes",
                           key, SF_HV_TAG_KEY_MAX);
    bool key_ok = isalnum ((unsigned char) *key);
    for (const char *c = key; *c && key_ok; c++)
        key_ok = isalnum ((unsigned char) *c) || *c == '_' || *c == '.' || *c == '-';
    if (!key_ok) {
        char shown [SF_HV_TAG_KEY_MAX * 4 + 1];
        snprintf (shown, sizeof (shown), "%s", key);
        sf_text_utf8_fix (shown);
        return sf_err_set (err, SF_EINVAL, "tag key '%s' is not an identifier "
                           "([A-Za-z0-9_.-], starting with a letter or digit)", shown);
    }
    if (strlen (value) > SF_HV_TAG_VALUE_MAX)
        return sf_err_set (err, SF_EINVAL, "value of tag '%s' is longer than %d bytes", key,
                           SF_HV_TAG_VALUE_MAX);
    if (!sf_utf8_valid (value))
        return sf_err_set (err, SF_EINVAL, "value of tag '%s' is not valid UTF-8", key);
    for (const char *c = value; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            return sf_err_set (err, SF_EINVAL, "value of tag '%s' has control characters",
                               key);
    return 0;
}

int
sf_hv_domain_tag_add (sf_hv_domain_t *domain, const char *key, const char *value,
                      sf_err_t *err)
{
    assert (domain && key && value);
    if (sf_hv_tag_check (key, value, err))
        return -1;
    if (sf_hv_domain_tag (domain, key))
        return sf_err_set (err, SF_EINVAL, "tag '%s' is set more than once (the first "
                           "counts)", key);
    if (zlistx_size (domain->tags) >= SF_HV_MAX_TAGS)
        return sf_err_set (err, SF_EINVAL, "more than %d tags (tag '%s' and later ones "
                           "skipped)", SF_HV_MAX_TAGS, key);
    sf_hv_tag_t *tag = (sf_hv_tag_t *) zmalloc (sizeof (sf_hv_tag_t));
    tag->key = strdup (key);
    tag->value = strdup (value);
    zlistx_add_end (domain->tags, tag);
    return 0;
}

const char *
sf_hv_domain_tag (const sf_hv_domain_t *domain, const char *key)
{
    assert (domain && key);
    sf_hv_tag_t *tag = (sf_hv_tag_t *) zlistx_first (domain->tags);
    for (; tag; tag = (sf_hv_tag_t *) zlistx_next (domain->tags))
        if (streq (tag->key, key))
            return tag->value;
    return NULL;
}

sf_hv_domain_t *
sf_hv_domain_find (zlistx_t *domains, const char *uuid)
{
    assert (domains && uuid);
    sf_hv_domain_t *domain = (sf_hv_domain_t *) zlistx_first (domains);
    for (; domain; domain = (sf_hv_domain_t *) zlistx_next (domains))
        if (strcasecmp (domain->uuid, uuid) == 0)
            return domain;
    return NULL;
}

const char *
sf_hv_state_name (int state)
{
    switch (state) {
        case SF_HV_RUNNING: return "running";
        case SF_HV_PAUSED:  return "paused";
        case SF_HV_SHUTOFF: return "shutoff";
        default:            return "other";
    }
}

//  --------------------------------------------------------------------------
//  Dispatch

static int
s_domain_compare (const void *a, const void *b)
{
    return strcmp (((const sf_hv_domain_t *) a)->uuid, ((const sf_hv_domain_t *) b)->uuid);
}

//  Vet a domain as a driver read it (see sf_hv.h): count its disks before
//  anything is sized by them, and check every name that goes into a path
//  or a command. Sets domain->refusal, or leaves it NULL.

static void
s_domain_vet (sf_hv_domain_t *domain)
{
    size_t count = zlistx_size (domain->disks);
    if (count > SF_WIRE_MAX_DISKS) {
        zlistx_purge (domain->disks);
        domain->refusal = zsys_sprintf ("instance '%s' has %zu disks, more than the %d "
                                        "snapfleet can snapshot", domain->name, count,
                                        SF_WIRE_MAX_DISKS);
        return;
    }
    sf_err_t err = SF_ERR_INIT;
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (domain->disks);
    for (; disk && !err.code; disk = (sf_hv_disk_t *) zlistx_next (domain->disks)) {
        if (!sf_hv_disk_is_data (disk))
            continue;
        if (!sf_name_is_safe (disk->target)) {
            char shown [128];
            snprintf (shown, sizeof (shown), "%s", disk->target ? disk->target : "");
            sf_text_utf8_fix (shown);
            sf_err_set (&err, SF_EINVAL, "disk target '%s' is not a safe name", shown);
        }
        else
        if (sf_hv_source_check (disk->target, disk->source, &err) == 0
        &&  (disk->type == SF_DISK_FILE || disk->type == SF_DISK_BLOCK)
        &&  *disk->source != '/')
            sf_err_set (&err, SF_EINVAL, "source of disk '%s' is not an absolute path",
                        disk->target);
    }
    if (err.code)
        domain->refusal = zsys_sprintf ("instance '%s': %s", domain->name, err.text);
}

//  Probe every file/block data disk. strict: a failing probe is an error.

static int
s_probe_disks (sf_hv_domain_t *domain, bool strict, sf_err_t *err)
{
    if (domain->refusal)
        return 0;               //  nothing of it goes on a command line
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (domain->disks)) {
        if ((disk->type != SF_DISK_FILE && disk->type != SF_DISK_BLOCK)
        ||  !sf_hv_disk_is_data (disk))
            continue;
        sf_err_t probe_err = SF_ERR_INIT;
        if (sf_hv_disk_probe (disk, NULL, &probe_err) == 0)
            continue;
        if (strict) {
            *err = probe_err;
            return sf_err_prefix (err, "disk '%s' of '%s'", disk->target, domain->name);
        }
        SF_DEBUG (NULL, "disk '%s' of '%s': %s", disk->target, domain->name, probe_err.text);
    }
    return 0;
}

zlistx_t *
sf_hv_list (sf_hv_t *self, int flags, sf_err_t *err)
{
    assert (self);
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, (zlistx_destructor_fn *) sf_hv_domain_destroy);
    zlistx_set_comparator (list, s_domain_compare);
    if (self->driver->list (self, list, err)) {
        zlistx_destroy (&list);
        return NULL;
    }
    zlistx_sort (list);
    sf_hv_domain_t *domain = (sf_hv_domain_t *) zlistx_first (list);
    for (; domain; domain = (sf_hv_domain_t *) zlistx_next (list)) {
        s_domain_vet (domain);
        if (domain->refusal)
            SF_DEBUG (NULL, "%s", domain->refusal);
        else
        if (flags & SF_HV_SIZES)
            s_probe_disks (domain, false, NULL);
    }
    return list;
}

sf_hv_domain_t *
sf_hv_lookup (sf_hv_t *self, const char *uuid, int flags, sf_err_t *err)
{
    assert (self && uuid);
    sf_hv_domain_t *domain = self->driver->lookup (self, uuid, err);
    if (domain)
        s_domain_vet (domain);
    if (domain && (flags & SF_HV_SIZES) && s_probe_disks (domain, true, err))
        sf_hv_domain_destroy (&domain);
    return domain;
}

int
sf_hv_state (sf_hv_t *self, const char *uuid, int *state, sf_err_t *err)
{
    assert (self && uuid && state);
    return self->driver->state (self, uuid, state, err);
}

int
sf_hv_suspend (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    assert (self && uuid);
    if (!self->driver->suspend)
        return sf_err_set (err, SF_ENOTSUP, "hypervisor driver '%s' cannot suspend",
                           self->driver->name);
    return self->driver->suspend (self, uuid, err);
}

int
sf_hv_resume (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    assert (self && uuid);
    if (!self->driver->resume)
        return sf_err_set (err, SF_ENOTSUP, "hypervisor driver '%s' cannot resume",
                           self->driver->name);
    return self->driver->resume (self, uuid, err);
}

int
sf_hv_fs_freeze (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    assert (self && uuid);
    if (!self->driver->fs_freeze)
        return sf_err_set (err, SF_ENOTSUP, "hypervisor driver '%s' cannot freeze "
                           "filesystems", self->driver->name);
    return self->driver->fs_freeze (self, uuid, err);
}

int
sf_hv_fs_thaw (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    assert (self && uuid);
    if (!self->driver->fs_thaw)
        return sf_err_set (err, SF_ENOTSUP, "hypervisor driver '%s' cannot thaw "
                           "filesystems", self->driver->name);
    return self->driver->fs_thaw (self, uuid, err);
}

//  --------------------------------------------------------------------------
//  Live copies

//  Append value to xml as an attribute value between single quotes

static void
s_xml_attr (zchunk_t *xml, const char *value)
{
    for (const char *c = value; *c; c++) {
        const char *entity = *c == '&' ? "&amp;" : *c == '<' ? "&lt;" : *c == '>' ? "&gt;"
                           : *c == '\'' ? "&apos;" : *c == '"' ? "&quot;" : NULL;
        if (entity)
            zchunk_extend (xml, entity, strlen (entity));
        else
            zchunk_extend (xml, c, 1);
    }
}

static void
s_xml_text (zchunk_t *xml, const char *text)
{
    zchunk_extend (xml, text, strlen (text));
}

//  Check a live disk list: safe targets, absolute checked paths, one path
//  at least, no target twice

static int
s_live_check (const sf_hv_live_t *disks, size_t count, sf_err_t *err)
{
    size_t paths = 0;
    for (size_t i = 0; i < count; i++) {
        if (!disks [i].target || !sf_name_is_safe (disks [i].target))
            return sf_err_set (err, SF_EINVAL, "disk target '%s' is not a safe name",
                               disks [i].target ? disks [i].target : "");
        for (size_t k = 0; k < i; k++)
            if (streq (disks [k].target, disks [i].target))
                return sf_err_set (err, SF_EINVAL, "disk target '%s' is named twice",
                                   disks [i].target);
        if (!disks [i].path)
            continue;
        if (sf_hv_source_check (disks [i].target, disks [i].path, err))
            return -1;
        if (*disks [i].path != '/')
            return sf_err_set (err, SF_EINVAL, "the copy of disk '%s' does not go to an "
                               "absolute path ('%s')", disks [i].target, disks [i].path);
        paths++;
    }
    if (paths == 0)
        return sf_err_set (err, SF_EINVAL, "no disk to copy");
    return 0;
}

static char *
s_xml_done (zchunk_t **xml_p)
{
    zchunk_t *xml = *xml_p;
    zchunk_extend (xml, "", 1);
    char *text = strdup ((const char *) zchunk_data (xml));
    zchunk_destroy (xml_p);
    return text;
}

char *
sf_hv_backup_xml (const sf_hv_live_t *disks, size_t count, sf_err_t *err)
{
    assert (disks || count == 0);
    if (s_live_check (disks, count, err))
        return NULL;
    zchunk_t *xml = zchunk_new (NULL, 512);
    s_xml_text (xml, "<domainbackup mode='push'><disks>");
    for (size_t i = 0; i < count; i++) {
        s_xml_text (xml, "<disk name='");
        s_xml_attr (xml, disks [i].target);
        if (disks [i].path) {
            s_xml_text (xml, "' backup='yes' type='file'><driver type='qcow2'/><target file='");
            s_xml_attr (xml, disks [i].path);
            s_xml_text (xml, "'/></disk>");
        }
        else
            s_xml_text (xml, "' backup='no'/>");
    }
    s_xml_text (xml, "</disks></domainbackup>");
    return s_xml_done (&xml);
}

char *
sf_hv_backup_incr_xml (const sf_hv_live_t *disks, size_t count, const char *since,
                       sf_err_t *err)
{
    if (since && !sf_wire_checkpoint_valid (since)) {
        sf_err_set (err, SF_EINVAL, "'%.64s' is not a snapfleet checkpoint", since);
        return NULL;
    }
    char *xml = sf_hv_backup_xml (disks, count, err);
    if (!xml || !since)
        return xml;
    const char *head = "<domainbackup mode='push'>";
    assert (strncmp (xml, head, strlen (head)) == 0);
    //  A valid checkpoint name is a safe name: nothing to escape
    char *incr = zsys_sprintf ("%s<incremental>%s</incremental>%s", head, since,
                               xml + strlen (head));
    free (xml);
    return incr;
}

char *
sf_hv_checkpoint_xml (const sf_hv_live_t *disks, size_t count, const char *name,
                      sf_err_t *err)
{
    assert (disks || count == 0);
    if (!sf_wire_checkpoint_valid (name)) {
        sf_err_set (err, SF_EINVAL, "'%.64s' is not a snapfleet checkpoint",
                    name ? name : "");
        return NULL;
    }
    if (s_live_check (disks, count, err))
        return NULL;
    zchunk_t *xml = zchunk_new (NULL, 512);
    s_xml_text (xml, "<domaincheckpoint><name>");
    s_xml_text (xml, name);
    s_xml_text (xml, "</name><description>snapfleet: the point of catalogue-job ");
    s_xml_text (xml, name + strlen (SF_WIRE_CHECKPOINT_PREFIX));
    s_xml_text (xml, "</description><disks>");
    for (size_t i = 0; i < count; i++) {
        s_xml_text (xml, "<disk name='");
        s_xml_attr (xml, disks [i].target);
        s_xml_text (xml, disks [i].path ? "' checkpoint='bitmap'/>" : "' checkpoint='no'/>");
    }
    s_xml_text (xml, "</disks></domaincheckpoint>");
    return s_xml_done (&xml);
}

char *
sf_hv_snapshot_xml (const sf_hv_live_t *disks, size_t count, sf_err_t *err)
{
    assert (disks || count == 0);
    if (s_live_check (disks, count, err))
        return NULL;
    zchunk_t *xml = zchunk_new (NULL, 512);
    s_xml_text (xml, "<domainsnapshot><description>snapfleet file-live: a temporary "
                "top layer, committed back after the copy</description><disks>");
    for (size_t i = 0; i < count; i++) {
        s_xml_text (xml, "<disk name='");
        s_xml_attr (xml, disks [i].target);
        if (disks [i].path) {
            s_xml_text (xml, "' snapshot='external' type='file'><driver type='qcow2'/>"
                        "<source file='");
            s_xml_attr (xml, disks [i].path);
            s_xml_text (xml, "'/></disk>");
        }
        else
            s_xml_text (xml, "' snapshot='no'/>");
    }
    s_xml_text (xml, "</disks></domainsnapshot>");
    return s_xml_done (&xml);
}

static int
s_no_live (sf_hv_t *self, const char *what, sf_err_t *err)
{
    return sf_err_set (err, SF_ENOTSUP, "hypervisor driver '%s' has no %s",
                       self->driver->name, what);
}

int
sf_hv_backup_begin (sf_hv_t *self, const char *uuid, const sf_hv_live_t *disks,
                    size_t count, sf_err_t *err)
{
    assert (self && uuid);
    char *xml = sf_hv_backup_xml (disks, count, err);
    if (!xml)
        return -1;
    int rc = self->driver->backup_begin
           ? self->driver->backup_begin (self, uuid, xml, err)
           : s_no_live (self, "backup API", err);
    free (xml);
    return rc;
}

int
sf_hv_backup_begin_cp (sf_hv_t *self, const char *uuid, const sf_hv_live_t *disks,
                       size_t count, const char *since, const char *name, sf_err_t *err)
{
    assert (self && uuid);
    if (!since && !name)
        return sf_hv_backup_begin (self, uuid, disks, count, err);
    char *xml = sf_hv_backup_incr_xml (disks, count, since, err);
    char *cp_xml = xml && name ? sf_hv_checkpoint_xml (disks, count, name, err) : NULL;
    int rc = -1;
    if (xml && (cp_xml || !name))
        rc = self->driver->backup_begin_cp
           ? self->driver->backup_begin_cp (self, uuid, xml, cp_xml, err)
           : s_no_live (self, "checkpoints", err);
    free (xml);
    free (cp_xml);
    return rc;
}

zlistx_t *
sf_hv_checkpoint_list (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    assert (self && uuid);
    if (!self->driver->checkpoint_list) {
        s_no_live (self, "checkpoints", err);
        return NULL;
    }
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    if (self->driver->checkpoint_list (self, uuid, names, err))
        zlistx_destroy (&names);
    return names;
}

int
sf_hv_checkpoint_delete (sf_hv_t *self, const char *uuid, const char *name, sf_err_t *err)
{
    assert (self && uuid);
    if (!sf_wire_checkpoint_valid (name))
        return sf_err_set (err, SF_EINVAL, "checkpoint '%.64s' is not one snapfleet makes; "
                           "not deleted", name ? name : "");
    if (!self->driver->checkpoint_delete)
        return s_no_live (self, "checkpoints", err);
    return self->driver->checkpoint_delete (self, uuid, name, err);
}

int
sf_hv_backup_poll (sf_hv_t *self, const char *uuid, sf_hv_progress_t *progress,
                   sf_err_t *err)
{
    assert (self && uuid && progress);
    memset (progress, 0, sizeof (*progress));
    if (!self->driver->backup_poll)
        return s_no_live (self, "backup API", err);
    return self->driver->backup_poll (self, uuid, progress, err);
}

int
sf_hv_backup_abort (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    assert (self && uuid);
    if (!self->driver->backup_abort)
        return s_no_live (self, "backup API", err);
    return self->driver->backup_abort (self, uuid, err);
}

//  --------------------------------------------------------------------------
//  Domains made from XML

static int
s_no_op (sf_hv_t *self, const char *what, sf_err_t *err)
{
    return sf_err_set (err, SF_ENOTSUP, "the %s driver cannot %s", self->driver->name, what);
}

int
sf_hv_domain_xml (sf_hv_t *self, const char *uuid, char **xml, sf_err_t *err)
{
    assert (self && uuid && xml);
    *xml = NULL;
    return self->driver->domain_xml ? self->driver->domain_xml (self, uuid, xml, err)
                                    : s_no_op (self, "give a domain's XML", err);
}

int
sf_hv_name_exists (sf_hv_t *self, const char *name, bool *exists, sf_err_t *err)
{
    assert (self && name && exists);
    return self->driver->name_exists ? self->driver->name_exists (self, name, exists, err)
                                     : s_no_op (self, "look up a domain by name", err);
}

int
sf_hv_define (sf_hv_t *self, const char *name, const char *xml, char *uuid,
              size_t uuid_size, sf_err_t *err)
{
    assert (self && name && xml && uuid && uuid_size >= 37);
    if (!self->driver->define || !self->driver->name_exists)
        return s_no_op (self, "define a domain", err);
    bool exists = true;
    if (self->driver->name_exists (self, name, &exists, err))
        return -1;
    if (exists)
        return sf_err_set (err, SF_EEXIST, "a domain named '%s' exists; not redefined", name);
    return self->driver->define (self, name, xml, uuid, uuid_size, err);
}

int
sf_hv_create_transient (sf_hv_t *self, const char *name, const char *xml, sf_err_t *err)
{
    assert (self && name && xml);
    if (!self->driver->create_transient || !self->driver->name_exists)
        return s_no_op (self, "start a transient domain", err);
    bool exists = true;
    if (self->driver->name_exists (self, name, &exists, err))
        return -1;
    if (exists)
        return sf_err_set (err, SF_EEXIST, "a domain named '%s' exists", name);
    return self->driver->create_transient (self, name, xml, err);
}

int
sf_hv_destroy_named (sf_hv_t *self, const char *name, sf_err_t *err)
{
    assert (self && name);
    return self->driver->destroy_named ? self->driver->destroy_named (self, name, err)
                                       : s_no_op (self, "stop a domain", err);
}

int
sf_hv_agent_ping (sf_hv_t *self, const char *name, int timeout_s, sf_err_t *err)
{
    assert (self && name);
    return self->driver->agent_ping ? self->driver->agent_ping (self, name, timeout_s, err)
                                    : s_no_op (self, "ping a guest agent", err);
}

int
sf_hv_snapshot_external (sf_hv_t *self, const char *uuid, const sf_hv_live_t *disks,
                         size_t count, sf_err_t *err)
{
    assert (self && uuid);
    char *xml = sf_hv_snapshot_xml (disks, count, err);
    if (!xml)
        return -1;
    int rc = self->driver->snapshot_external
           ? self->driver->snapshot_external (self, uuid, xml, err)
           : s_no_live (self, "external snapshots", err);
    free (xml);
    return rc;
}

int
sf_hv_commit (sf_hv_t *self, const char *uuid, const char *target, int64_t deadline,
              sf_err_t *err)
{
    assert (self && uuid && target);
    if (!self->driver->commit_start || !self->driver->commit_pivot
    ||  !self->driver->commit_abort)
        return s_no_live (self, "block commit", err);
    if (self->driver->commit_start (self, uuid, target, err))
        return -1;
    //  Ready once the top layer's data is in its backing file and every
    //  new write goes to both; the pivot then switches the guest over
    int pause_ms = 10;
    while (true) {
        bool ready = false;
        if (self->driver->commit_pivot (self, uuid, target, &ready, err))
            break;
        if (ready)
            return 0;
        if (sf_time_mono_ms () >= deadline) {
            sf_err_set (err, SF_ETIMEDOUT, "the commit of disk '%s' was not ready "
                        "before its deadline", target);
            break;
        }
        zclock_sleep (pause_ms);
        pause_ms = pause_ms < 200 ? pause_ms * 2 : 200;
    }
    sf_err_t abort_err = SF_ERR_INIT;
    if (self->driver->commit_abort (self, uuid, target, &abort_err))
        SF_WARN (NULL, "cannot abort the commit of disk '%s' of '%s': %s", target, uuid,
                 abort_err.text);
    return -1;
}

//  --------------------------------------------------------------------------
//  qemu-img info --output=json --backing-chain prints an array, top image
//  first. Sizes are json_int_t (long long), never int.

static int
s_parse_info (sf_hv_disk_t *disk, const char *text, sf_err_t *err)
{
    json_error_t jerr;
    json_t *root = json_loads (text, 0, &jerr);
    if (!json_is_array (root) || json_array_size (root) == 0) {
        json_decref (root);
        return sf_err_set (err, SF_EIO, "cannot parse qemu-img info of '%s'", disk->source);
    }
    zlistx_purge (disk->backing_chain);
    disk->allocated_size = 0;
    size_t index;
    json_t *layer;
    json_array_foreach (root, index, layer) {
        json_int_t vsize = json_integer_value (json_object_get (layer, "virtual-size"));
        json_int_t asize = json_integer_value (json_object_get (layer, "actual-size"));
        const char *filename = json_string_value (json_object_get (layer, "filename"));
        if (index == 0)
            disk->virtual_size = vsize > 0 ? (uint64_t) vsize : 0;
        else
        if (filename)
            zlistx_add_end (disk->backing_chain, (void *) filename);
        if (asize > 0)
            disk->allocated_size += (uint64_t) asize;
        //  qemu-img probed the format of a backing file that names none:
        //  a layer's contents must not choose how the next one is read
        if (json_object_get (layer, "backing-filename")
        &&  !json_string_value (json_object_get (layer, "backing-filename-format"))) {
            json_decref (root);
            return sf_err_set (err, SF_EINVAL, "disk '%s': '%s' has a backing file "
                               "without a recorded format; refusing to probe it",
                               disk->target, filename ? filename : disk->source);
        }
    }
    json_decref (root);
    return 0;
}

int
sf_hv_disk_probe (sf_hv_disk_t *disk, zsock_t *cancel, sf_err_t *err)
{
    assert (disk);
    if (!disk->source || !*disk->source)
        return sf_err_set (err, SF_ENOENT, "disk '%s' has no source", disk->target);
    if (sf_hv_source_check (disk->target, disk->source, err))
        return -1;
    char *argv [] = { "qemu-img", "info", "-U", "--output=json",
                      "-f", (char *) sf_hv_disk_format (disk), "--backing-chain",
                      "--", disk->source, NULL };
    sf_proc_t *proc = sf_proc_run (argv, cancel, sf_time_mono_ms () + 60000, err);
    if (!proc)
        return -1;
    int rc = s_parse_info (disk, sf_proc_stdout (proc), err);
    sf_proc_destroy (&proc);
    return rc;
}

const char *
sf_hv_disk_format (const sf_hv_disk_t *disk)
{
    assert (disk);
    return disk->format && *disk->format ? disk->format : "raw";
}

int
sf_hv_source_check (const char *target, const char *source, sf_err_t *err)
{
    if (!target)
        target = "?";
    if (!source || !*source)
        return sf_err_set (err, SF_EINVAL, "disk '%s' has no source", target);
    if (strlen (source) > SF_WIRE_MAX_STRING)
        return sf_err_set (err, SF_EINVAL, "source of disk '%s' is longer than %d bytes",
                           target, SF_WIRE_MAX_STRING);
    if (*source == '-')
        return sf_err_set (err, SF_EINVAL, "source of disk '%s' starts with '-'", target);
    if (!sf_utf8_valid (source))
        return sf_err_set (err, SF_EINVAL, "source of disk '%s' is not valid UTF-8", target);
    for (const char *c = source; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            return sf_err_set (err, SF_EINVAL, "source of disk '%s' has control "
                               "characters", target);
    return 0;
}

//  --------------------------------------------------------------------------
//  Storage class and strategy

bool
sf_hv_disk_is_data (const sf_hv_disk_t *disk)
{
    assert (disk);
    if (!disk->source || !*disk->source)
        return false;
    return !disk->device || streq (disk->device, "disk") || streq (disk->device, "lun");
}

const char *
sf_hv_domain_storage_class (const sf_hv_domain_t *domain)
{
    assert (domain);
    int files = 0, rbds = 0, others = 0;
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (domain->disks)) {
        if (!sf_hv_disk_is_data (disk))
            continue;
        if (disk->type == SF_DISK_FILE || disk->type == SF_DISK_BLOCK)
            files++;
        else
        if (disk->type == SF_DISK_RBD)
            rbds++;
        else
            others++;
    }
    if (files && rbds)
        return "mixed";
    if (files)
        return others ? "mixed" : "file";
    if (rbds)
        return others ? "mixed" : "rbd";
    return "none";
}

const char *
sf_hv_domain_strategy (const sf_hv_domain_t *domain)
{
    assert (domain);
    if (domain->refusal)
        return "";
    const char *strategy = sf_strategies_choose (sf_hv_state_name (domain->state),
                                                 sf_hv_domain_storage_class (domain), NULL);
    return strategy ? strategy : "";
}

int
sf_hv_strategy_check (const sf_hv_domain_t *domain, const char *strategy, sf_err_t *err)
{
    assert (domain && strategy);
    if (domain->refusal)
        return sf_err_set (err, SF_EINVAL, "%s", domain->refusal);
    return sf_strategies_check (strategy, domain->name, sf_hv_state_name (domain->state),
                                sf_hv_domain_storage_class (domain), err);
}

//  --------------------------------------------------------------------------
//  Self test

//  A test:/// node with an RBD+block domain (paused) and a diskless
//  shut-off one; written to dir. Returns the URI (caller frees).

//  "k=v k=v " of a domain's tags

static char *
s_test_tags (sf_hv_domain_t *domain)
{
    char *text = strdup ("");
    sf_hv_tag_t *tag = (sf_hv_tag_t *) zlistx_first (domain->tags);
    for (; tag; tag = (sf_hv_tag_t *) zlistx_next (domain->tags)) {
        char *grown = zsys_sprintf ("%s%s=%s ", text, tag->key, tag->value);
        zstr_free (&text);
        text = grown;
    }
    return text;
}

static void
s_test_tag_check (void)
{
    sf_err_t err = SF_ERR_INIT;
    assert (sf_hv_tag_check ("tier", "gold", &err) == 0);
    assert (sf_hv_tag_check ("a.b_c-9", "", &err) == 0);
    assert (sf_hv_tag_check ("9x", "ünï", &err) == 0);
    assert (sf_hv_tag_check ("", "x", &err) == -1 && err.code == SF_EINVAL);
    assert (sf_hv_tag_check ("_x", "x", &err) == -1);
    assert (sf_hv_tag_check ("a=b", "x", &err) == -1);
    assert (strstr (err.text, "tag key 'a=b' is not an identifier"));
    assert (sf_hv_tag_check ("a", "\xff\xfe", &err) == -1);
    assert (strstr (err.text, "not valid UTF-8"));
    assert (sf_hv_tag_check ("a", "x\ny", &err) == -1);
    assert (strstr (err.text, "control characters"));
    char key [SF_HV_TAG_KEY_MAX + 2];
    memset (key, 'k', sizeof (key) - 1);
    key [sizeof (key) - 1] = 0;
    assert (sf_hv_tag_check (key, "x", &err) == -1 && strstr (err.text, "longer than 63"));
    key [SF_HV_TAG_KEY_MAX] = 0;
    assert (sf_hv_tag_check (key, "x", &err) == 0);
}

static char *
s_test_node (const char *dir)
{
    char *path = zsys_sprintf ("%s/node.xml", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fprintf (file,
        "<node>\n"
        "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
        " <name>mix</name><uuid>11111111-2222-3333-4444-555555555555</uuid>\n"
        " <metadata>\n"
        "  <sf:tags xmlns:sf='urn:snapfleet:tags:1'>\n"
        "   <sf:tag key='tier' value='gold'/><sf:tag key='owner' value='Zoë ☃'/>\n"
        "   <sf:tag key='bad key' value='x'/><sf:tag key='tier' value='silver'/>\n"
        "   <sf:tag key='nov'/><sf:tag value='nok'/><sf:tag key='-x' value='y'/>\n"
        "   <sf:tag key='long' value='%0300d'/><sf:tag key='empty' value=''/>\n"
        "   <tag key='plain' value='unqualified'/>\n"
        "   <o:tag xmlns:o='urn:other' key='other' value='ns'/>\n"
        "  </sf:tags>\n"
        "  <o:tags xmlns:o='urn:other'><o:tag key='foreign' value='1'/></o:tags>\n"
        " </metadata>\n"
        " <memory>65536</memory><os><type>hvm</type></os>\n"
        " <devices>\n"
        "  <disk type='network' device='disk'><driver name='qemu' type='raw'/>\n"
        "   <source protocol='rbd' name='pool/img1'><host name='127.0.0.1'/></source>\n"
        "   <target dev='vda' bus='virtio'/></disk>\n"
        "  <disk type='block' device='disk'><driver name='qemu' type='raw'/>\n"
        "   <source dev='/dev/sdz'/><target dev='vdb' bus='virtio'/></disk>\n"
        "  <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>\n"
        " </devices>\n"
        " <test:runstate>3</test:runstate>\n"
        "</domain>\n"
        "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
        " <name>off</name><uuid>11111111-2222-3333-4444-666666666666</uuid>\n"
        " <metadata><t:tags xmlns:t='urn:snapfleet:tags:1'>\n", 0);
    for (int i = 0; i < SF_HV_MAX_TAGS + 2; i++)
        fprintf (file, "  <t:tag key='k%02d' value='v%d'/>\n", i, i);
    fprintf (file,
        " </t:tags></metadata>\n"
        " <memory>65536</memory><os><type>hvm</type></os>\n"
        " <test:runstate>5</test:runstate>\n"
        "</domain>\n");
    //  No format in the XML; 300 disks; unsafe target; source like an option
    const char *guests [][3] = {
        { "nofmt", "7", "<disk type='file' device='disk'><source file='/x/raw.img'/>"
                        "<target dev='vda'/></disk>" },
        { "many", "8", NULL },
        { "dash", "a", "<disk type='file' device='disk'><source file='-Ufoo'/>"
                       "<target dev='vda'/></disk>" },
    };
    for (size_t i = 0; i < sizeof (guests) / sizeof (guests [0]); i++) {
        fprintf (file,
            "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
            " <name>%s</name><uuid>11111111-2222-3333-4444-%012x</uuid>\n"
            " <memory>65536</memory><os><type>hvm</type></os>\n"
            " <test:runstate>5</test:runstate>\n <devices>\n", guests [i][0],
            (unsigned) strtoul (guests [i][1], NULL, 16));
        if (guests [i][2])
            fprintf (file, "  %s\n", guests [i][2]);
        else
        for (int d = 0; d < 300; d++) {
            char dev [8];               //  vda .. vdz, vdaa .. (libvirt's names)
            if (d < 26)
                snprintf (dev, sizeof (dev), "vd%c", 'a' + d);
            else
                snprintf (dev, sizeof (dev), "vd%c%c", 'a' + d / 26 - 1, 'a' + d % 26);
            fprintf (file, "  <disk type='file' device='disk'><driver name='qemu' "
                     "type='raw'/><source file='/x/d%d.img'/><target dev='%s'/></disk>\n",
                     d, dev);
        }
        fprintf (file, " </devices>\n</domain>\n");
    }
    fprintf (file, "</node>\n");
    fclose (file);
    char *uri = zsys_sprintf ("test://%s", path);
    zstr_free (&path);
    return uri;
}

//  What the node's other four domains say is not trusted: a disk without
//  a format is raw; too many disks, an unsafe target or a source that
//  reads as an option is a refusal, listed, never probed nor snapshotted

static void
s_test_refusals (zlistx_t *list)
{
    sf_err_t err = SF_ERR_INIT;
    sf_hv_domain_t *domain = sf_hv_domain_find (list, "11111111-2222-3333-4444-000000000007");
    assert (domain && !domain->refusal && zlistx_size (domain->disks) == 1);
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (domain->disks);
    assert (streq (disk->format, "raw") && streq (sf_hv_disk_format (disk), "raw"));
    assert (sf_hv_strategy_check (domain, "offline", &err) == 0);

    domain = sf_hv_domain_find (list, "11111111-2222-3333-4444-000000000008");
    assert (domain && streq (domain->name, "many") && zlistx_size (domain->disks) == 0);
    assert (domain->refusal && streq (domain->refusal, "instance 'many' has 300 disks, "
                                      "more than the 64 snapfleet can snapshot"));
    assert (streq (sf_hv_domain_strategy (domain), ""));
    assert (sf_hv_strategy_check (domain, "offline", &err) == -1 && err.code == SF_EINVAL);
    assert (strstr (err.text, "has 300 disks, more than the 64"));
    //  Its inventory entry: no disks, nothing overflows
    zframe_t *frame = sf_scan_encode (list, &err);
    assert (frame);
    zframe_destroy (&frame);

    //  libvirt itself refuses a target like this; another driver might not
    domain = sf_hv_domain_new ("11111111-2222-3333-4444-000000000009", "badtarget",
                               SF_HV_SHUTOFF);
    disk = sf_hv_disk_new ();
    disk->target = strdup ("../vda");
    disk->type = SF_DISK_FILE;
    disk->source = strdup ("/x/a.img");
    zlistx_add_end (domain->disks, disk);
    s_domain_vet (domain);
    assert (domain->refusal);
    assert (streq (domain->refusal, "instance 'badtarget': disk target '../vda' is not a "
                                    "safe name"));
    assert (sf_hv_strategy_check (domain, "offline", &err) == -1);
    free (disk->target);
    disk->target = strdup ("vda");
    free (disk->source);
    disk->source = strdup ("x/a.img");
    zstr_free (&domain->refusal);
    s_domain_vet (domain);
    assert (domain->refusal && strstr (domain->refusal, "is not an absolute path"));
    sf_hv_domain_destroy (&domain);
    domain = sf_hv_domain_find (list, "11111111-2222-3333-4444-00000000000a");
    assert (domain && domain->refusal);
    assert (streq (domain->refusal, "instance 'dash': source of disk 'vda' starts with '-'"));
}

static void
s_test_probe (const char *dir)
{
    sf_err_t err = SF_ERR_INIT;
    char *cmd = zsys_sprintf ("cd %s && qemu-img create -q -f raw base.raw 8M && "
                              "qemu-img create -q -f qcow2 -F raw -b %s/base.raw top.qcow2",
                              dir, dir);
    assert (system (cmd) == 0);         //  test setup only, not product code
    zstr_free (&cmd);
    sf_hv_disk_t *disk = sf_hv_disk_new ();
    disk->target = strdup ("vda");
    disk->type = SF_DISK_FILE;
    disk->source = zsys_sprintf ("%s/top.qcow2", dir);
    disk->format = strdup ("qcow2");
    assert (sf_hv_disk_probe (disk, NULL, &err) == 0);
    assert (disk->virtual_size == 8 << 20);
    assert (disk->allocated_size > 0);
    assert (zlistx_size (disk->backing_chain) == 1);
    assert (strstr ((char *) zlistx_first (disk->backing_chain), "base.raw"));
    free (disk->source);
    disk->source = zsys_sprintf ("%s/missing.qcow2", dir);
    assert (sf_hv_disk_probe (disk, NULL, &err) == -1);
    assert (err.code == SF_EIO && strstr (err.text, "missing.qcow2"));
    sf_hv_disk_destroy (&disk);
}

//  A libvirtd that never answers (a socket that listens and never
//  accepts): the connect fails after the answer timeout, clearly

static void
s_test_answer_timeout (void)
{
    sf_err_t err = SF_ERR_INIT;
    assert (sf_hv_answer_timeout () == SF_HV_ANSWER_MS);
    char dir [] = "/tmp/sf-hv-hung-XXXXXX";
    assert (mkdtemp (dir));
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf (addr.sun_path, sizeof (addr.sun_path), "%s/sock", dir);
    int listener = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (listener != -1);
    assert (bind (listener, (struct sockaddr *) &addr, sizeof (addr)) == 0);
    assert (listen (listener, 8) == 0);
    char *uri = zsys_sprintf ("qemu:///session?socket=%s", addr.sun_path);
    sf_hv_set_answer_timeout (2000);
    int64_t start = sf_time_mono_ms ();
    assert (sf_hv_new (uri, &err) == NULL);
    int64_t took = sf_time_mono_ms () - start;
    assert (err.code == SF_ETIMEDOUT);
    char *want = zsys_sprintf ("libvirtd at %s did not answer for 2 s; cannot connect to it",
                               uri);
    assert (streq (err.text, want));
    assert (took >= 1900 && took < 10000);
    //  The connect given up on fails once the socket goes; its thread ends
    close (listener);
    zclock_sleep (300);
    sf_hv_set_answer_timeout (SF_HV_ANSWER_MS);
    unlink (addr.sun_path);
    rmdir (dir);
    zstr_free (&want);
    zstr_free (&uri);
}

//  The live-copy XML: escaped paths, disks left out, bad lists refused;
//  test:///default has no backup API and no external snapshots (ENOTSUP)

static void
s_test_live_xml (void)
{
    sf_err_t err = SF_ERR_INIT;
    sf_hv_live_t disks [] = { { "vda", "/w/J1/vda.qcow2" }, { "hdc", NULL },
                              { "vdb", "/w/it's <&\">/vdb.qcow2" } };
    char *xml = sf_hv_backup_xml (disks, 3, &err);
    assert (xml);
    assert (streq (xml, "<domainbackup mode='push'><disks>"
        "<disk name='vda' backup='yes' type='file'><driver type='qcow2'/>"
        "<target file='/w/J1/vda.qcow2'/></disk><disk name='hdc' backup='no'/>"
        "<disk name='vdb' backup='yes' type='file'><driver type='qcow2'/>"
        "<target file='/w/it&apos;s &lt;&amp;&quot;&gt;/vdb.qcow2'/></disk>"
        "</disks></domainbackup>"));
    zstr_free (&xml);
    xml = sf_hv_snapshot_xml (disks, 2, &err);
    assert (xml && strstr (xml, "<disk name='vda' snapshot='external' type='file'>"
        "<driver type='qcow2'/><source file='/w/J1/vda.qcow2'/></disk>"
        "<disk name='hdc' snapshot='no'/></disks></domainsnapshot>"));
    assert (strncmp (xml, "<domainsnapshot><description>", 29) == 0);
    zstr_free (&xml);
    //  The XML parses (libxml2, as libvirt reads it)
    xml = sf_hv_backup_xml (disks, 3, &err);
    xmlDocPtr doc = xmlReadMemory (xml, (int) strlen (xml), "b.xml", NULL, XML_PARSE_NONET);
    assert (doc);
    xmlFreeDoc (doc);
    zstr_free (&xml);

    struct { sf_hv_live_t disks [2]; size_t count; const char *text; } bad [] = {
        { { { "vda", NULL }, { "vdb", NULL } }, 2, "no disk to copy" },
        { { { "vda", "/x" } }, 0, "no disk to copy" },
        { { { "vd'a", "/x" } }, 1, "disk target 'vd'a' is not a safe name" },
        { { { "vda", "/x" }, { "vda", "/y" } }, 2, "disk target 'vda' is named twice" },
        { { { "vda", "rel/x.qcow2" } }, 1, "does not go to an absolute path" },
        { { { "vda", "" } }, 1, "vda" },
        { { { "vda", "/a\nb" } }, 1, "vda" },
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        sf_err_clear (&err);
        assert (sf_hv_backup_xml (bad [i].disks, bad [i].count, &err) == NULL);
        assert (err.code == SF_EINVAL && strstr (err.text, bad [i].text));
        sf_err_clear (&err);
        assert (sf_hv_snapshot_xml (bad [i].disks, bad [i].count, &err) == NULL);
        assert (err.code == SF_EINVAL);
    }
    sf_hv_t *hv = sf_hv_new ("test:///default", &err);
    assert (hv);
    const char *uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";
    sf_hv_live_t vda = { "vda", "/nonexistent/vda.qcow2" };
    assert (sf_hv_backup_begin (hv, uuid, &vda, 1, &err) == -1 && err.code == SF_ENOTSUP);
    assert (strstr (err.text, "virDomainBackupBegin"));
    assert (sf_hv_snapshot_external (hv, uuid, &vda, 1, &err) == -1);
    assert (err.code == SF_ENOTSUP);
    assert (sf_hv_commit (hv, uuid, "vda", sf_time_mono_ms () + 1000, &err) == -1);
    assert (err.code == SF_ENOTSUP);
    assert (sf_hv_backup_begin (hv, uuid, &vda, 0, &err) == -1 && err.code == SF_EINVAL);
    //  Checkpoints: test:///default has none of the calls; only snapfleet's
    //  names are ever deleted
    assert (sf_hv_backup_begin_cp (hv, uuid, &vda, 1, "snapfleet-J1", "snapfleet-J2",
                                   &err) == -1 && err.code == SF_ENOTSUP);
    assert (sf_hv_checkpoint_delete (hv, uuid, "nightly", &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "not one snapfleet makes"));
    sf_hv_destroy (&hv);
}

//  The incremental backup and checkpoint XML

static void
s_test_checkpoint_xml (void)
{
    sf_err_t err = SF_ERR_INIT;
    sf_hv_live_t disks [] = { { "vda", "/w/J2/vda.qcow2" }, { "hdc", NULL } };
    char *xml = sf_hv_backup_incr_xml (disks, 2, "snapfleet-J1", &err);
    assert (xml && streq (xml, "<domainbackup mode='push'><incremental>snapfleet-J1"
        "</incremental><disks><disk name='vda' backup='yes' type='file'><driver "
        "type='qcow2'/><target file='/w/J2/vda.qcow2'/></disk><disk name='hdc' "
        "backup='no'/></disks></domainbackup>"));
    zstr_free (&xml);
    xml = sf_hv_backup_incr_xml (disks, 2, NULL, &err);
    assert (xml && !strstr (xml, "incremental"));
    zstr_free (&xml);
    assert (sf_hv_backup_incr_xml (disks, 2, "c1</incremental>", &err) == NULL);
    assert (err.code == SF_EINVAL);
    xml = sf_hv_checkpoint_xml (disks, 2, "snapfleet-J2", &err);
    assert (xml && streq (xml, "<domaincheckpoint><name>snapfleet-J2</name><description>"
        "snapfleet: the point of catalogue-job J2</description><disks><disk name='vda' "
        "checkpoint='bitmap'/><disk name='hdc' checkpoint='no'/></disks>"
        "</domaincheckpoint>"));
    xmlDocPtr doc = xmlReadMemory (xml, (int) strlen (xml), "c.xml", NULL, XML_PARSE_NONET);
    assert (doc);
    xmlFreeDoc (doc);
    zstr_free (&xml);
    assert (sf_hv_checkpoint_xml (disks, 2, "other", &err) == NULL && err.code == SF_EINVAL);
    assert (sf_hv_checkpoint_xml (disks, 0, "snapfleet-J2", &err) == NULL);
}

//  Domains made from XML (restore --as-domain, verify --boot), on the mock

static void
s_test_made (sf_hv_t *hv, const char *uuid)
{
    sf_err_t err = SF_ERR_INIT;
    char *xml = NULL;
    assert (sf_hv_domain_xml (hv, uuid, &xml, &err) == 0 && strstr (xml, "<name>test</name>"));
    sf_hv_domxml_t spec = { .name = "test-back", .disk_target = "vda",
                            .file = "/guest/back.qcow2", .format = "qcow2" };
    char *copy = sf_hv_domxml_copy (xml, &spec, NULL, NULL, &err);
    assert (copy);
    bool exists = true;
    assert (sf_hv_name_exists (hv, "test-back", &exists, &err) == 0 && !exists);
    char made [64] = "";
    assert (sf_hv_define (hv, "test-back", copy, made, sizeof (made), &err) == 0);
    assert (strlen (made) == 36 && !streq (made, uuid));
    assert (sf_hv_name_exists (hv, "test-back", &exists, &err) == 0 && exists);
    int state = 0;
    assert (sf_hv_state (hv, made, &state, &err) == 0 && state == SF_HV_SHUTOFF);
    //  A name that exists is refused, and the domain stays as it was
    assert (sf_hv_define (hv, "test-back", copy, made, sizeof (made), &err) == -1);
    assert (err.code == SF_EEXIST && strstr (err.text, "'test-back' exists"));
    assert (sf_hv_define (hv, "test", xml, made, sizeof (made), &err) == -1);
    assert (err.code == SF_EEXIST);
    free (copy);
    //  A transient copy runs until destroyed, then it is gone
    spec.name = "snapfleet-verify-J1", spec.transient = true, spec.console = "/tmp/c.log";
    copy = sf_hv_domxml_copy (xml, &spec, NULL, NULL, &err);
    assert (copy && sf_hv_create_transient (hv, spec.name, copy, &err) == 0);
    assert (sf_hv_name_exists (hv, spec.name, &exists, &err) == 0 && exists);
    assert (sf_hv_create_transient (hv, spec.name, copy, &err) == -1 && err.code == SF_EEXIST);
    assert (sf_hv_agent_ping (hv, spec.name, 1, &err) == -1);     //  the mock has no agent
    assert (sf_hv_destroy_named (hv, spec.name, &err) == 0);
    assert (sf_hv_name_exists (hv, spec.name, &exists, &err) == 0 && !exists);
    assert (sf_hv_destroy_named (hv, spec.name, &err) == -1 && err.code == SF_ENOENT);
    //  A persistent domain is never one of ours: left running
    assert (sf_hv_destroy_named (hv, "test", &err) == -1 && err.code == SF_EEXIST);
    assert (sf_hv_state (hv, uuid, &state, &err) == 0 && state == SF_HV_RUNNING);
    free (copy);
    free (xml);
}

void
sf_hv_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_hv: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    assert (sf_hv_new ("nosuch:///x", &err) == NULL);
    assert (err.code == SF_EHV);
    s_test_tag_check ();
    s_test_answer_timeout ();
    s_test_live_xml ();
    s_test_checkpoint_xml ();

    //  test:///default: one running domain 'test' with a file disk.
    //  The mock keeps state per connection, so all of this is one connection.
    sf_hv_t *hv = sf_hv_new ("test:///default", &err);
    assert (hv);
    zlistx_t *list = sf_hv_list (hv, SF_HV_SIZES, &err);
    assert (list && zlistx_size (list) == 1);
    sf_hv_domain_t *domain = (sf_hv_domain_t *) zlistx_first (list);
    const char *uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";
    assert (streq (domain->uuid, uuid) && streq (domain->name, "test"));
    assert (domain->state == SF_HV_RUNNING);
    assert (zlistx_size (domain->disks) == 1);
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (domain->disks);
    assert (streq (disk->target, "vda") && disk->type == SF_DISK_FILE);
    assert (streq (disk->source, "/guest/diskimage1") && streq (disk->device, "disk"));
    assert (disk->virtual_size == 0);   //  no such file: listed, size unknown
    assert (streq (sf_hv_domain_storage_class (domain), "file"));
    assert (streq (sf_hv_domain_strategy (domain), "file-live"));
    assert (sf_hv_strategy_check (domain, "file-cold", &err) == 0);
    assert (sf_hv_strategy_check (domain, "offline", &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "(storage class file, running)"));
    assert (sf_hv_strategy_check (domain, "rbd", &err) == -1 && err.code == SF_EINVAL);
    assert (strstr (err.text, "'rbd' does not fit instance 'test' (storage class file, "
                    "running)"));
    assert (sf_hv_strategy_check (domain, "bogus", &err) == -1 && err.code == SF_EINVAL);
    assert (sf_hv_domain_find (list, "6695EB01-F6A4-8304-79AA-97F2502E193F") == domain);
    zlistx_destroy (&list);

    int state = 0;
    assert (sf_hv_suspend (hv, uuid, &err) == 0);
    assert (sf_hv_state (hv, uuid, &state, &err) == 0 && state == SF_HV_PAUSED);
    domain = sf_hv_lookup (hv, uuid, 0, &err);
    assert (domain && domain->state == SF_HV_PAUSED);
    assert (sf_hv_strategy_check (domain, "file-cold", &err) == 0);
    sf_hv_domain_destroy (&domain);
    assert (sf_hv_resume (hv, uuid, &err) == 0);
    assert (sf_hv_state (hv, uuid, &state, &err) == 0 && state == SF_HV_RUNNING);
    assert (sf_hv_resume (hv, uuid, &err) == -1 && err.code == SF_EHV);
    //  The mock freezes and thaws (it has no agent to be missing)
    assert (sf_hv_fs_freeze (hv, uuid, &err) == 0);
    assert (sf_hv_fs_thaw (hv, uuid, &err) == 0);
    assert (sf_hv_lookup (hv, "00000000-0000-0000-0000-000000000000", 0, &err) == NULL);
    assert (err.code == SF_ENOENT);
    //  Strict lookup needs the sizes: the mock's disk file does not exist
    assert (sf_hv_lookup (hv, uuid, SF_HV_SIZES, &err) == NULL);
    assert (err.code == SF_EIO && strstr (err.text, "disk 'vda' of 'test'"));
    s_test_made (hv, uuid);
    sf_hv_destroy (&hv);
    assert (hv == NULL);

    //  A node file: network/rbd and block disks, paused and shut-off states
    char dir [] = "/tmp/sf-hv-test-XXXXXX";
    assert (mkdtemp (dir));
    char *uri = s_test_node (dir);
    hv = sf_hv_new (uri, &err);
    assert (hv);
    list = sf_hv_list (hv, 0, &err);
    assert (list && zlistx_size (list) == 5);
    s_test_refusals (list);
    domain = sf_hv_domain_find (list, "11111111-2222-3333-4444-555555555555");
    assert (domain && streq (domain->name, "mix") && domain->state == SF_HV_PAUSED);
    assert (zlistx_size (domain->disks) == 3);
    disk = (sf_hv_disk_t *) zlistx_first (domain->disks);
    assert (disk->type == SF_DISK_RBD && streq (disk->source, "pool/img1"));
    assert (streq (disk->protocol, "rbd") && streq (disk->format, "raw"));
    disk = (sf_hv_disk_t *) zlistx_next (domain->disks);
    assert (disk->type == SF_DISK_BLOCK && streq (disk->source, "/dev/sdz"));
    disk = (sf_hv_disk_t *) zlistx_next (domain->disks);
    assert (streq (disk->device, "cdrom") && !sf_hv_disk_is_data (disk));
    assert (streq (sf_hv_domain_storage_class (domain), "mixed"));
    assert (sf_hv_strategy_check (domain, "file-cold", &err) == -1);
    assert (strstr (err.text, "(storage class mixed, paused)"));
    assert (streq (sf_hv_domain_strategy (domain), "mixed"));
    assert (sf_hv_strategy_check (domain, "offline", &err) == -1);
    assert (strstr (err.text, "'offline' does not fit instance 'mix' (storage class mixed, "
                    "paused)"));
    //  Tags: by namespace URI, in order; bad, duplicate and foreign ones skipped
    char *tags = s_test_tags (domain);
    assert (streq (tags, "tier=gold owner=Zoë ☃ empty= plain=unqualified "));
    zstr_free (&tags);
    assert (streq (sf_hv_domain_tag (domain, "tier"), "gold"));
    assert (sf_hv_domain_tag (domain, "foreign") == NULL);
    domain = sf_hv_domain_find (list, "11111111-2222-3333-4444-666666666666");
    assert (domain && domain->state == SF_HV_SHUTOFF);
    assert (streq (sf_hv_domain_storage_class (domain), "none"));
    //  Any prefix; at most SF_HV_MAX_TAGS
    assert (zlistx_size (domain->tags) == SF_HV_MAX_TAGS);
    assert (streq (sf_hv_domain_tag (domain, "k63"), "v63"));
    assert (sf_hv_domain_tag (domain, "k64") == NULL);
    zlistx_destroy (&list);
    sf_hv_destroy (&hv);
    zstr_free (&uri);

    //  Sizes and backing chain from real qemu-img on small files
    s_test_probe (dir);
    char *rm = zsys_sprintf ("rm -rf %s", dir);
    assert (system (rm) == 0);
    zstr_free (&rm);
    //  @end
    printf ("OK\n");
}
